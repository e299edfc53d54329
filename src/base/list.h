/* Intrusive doubly-linked lists: the item has `prev` and `next` pointers,
 * the head is a pointer to the first item. */
#pragma once

#include <stddef.h>

#define LIST_PREPEND(head, item)               \
	do {                                   \
		(item)->prev = NULL;           \
		(item)->next = (head);         \
		if (head)                      \
			(head)->prev = (item); \
		(head) = (item);               \
	} while (0)

#define LIST_REMOVE(head, item)                            \
	do {                                               \
		if ((item)->prev)                          \
			(item)->prev->next = (item)->next; \
		else                                       \
			(head) = (item)->next;             \
		if ((item)->next)                          \
			(item)->next->prev = (item)->prev; \
		(item)->prev = (item)->next = NULL;        \
	} while (0)
