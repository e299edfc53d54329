/* NULL-terminated arrays of malloc'd strings. */
#pragma once

/* Frees the strings and the array. Accepts NULL. */
void strv_free(char **v);
/* A deep copy, or NULL on allocation failure. */
char **strv_copy(char *const *v);
