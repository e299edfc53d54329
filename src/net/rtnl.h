/* Just enough rtnetlink to configure IPv4 on an interface: link up, one
 * address (replacing others), the default route; and to forget learned
 * neighbours. Functions return -errno
 * as the kernel reported it. */
#pragma once

#include <stdint.h>

int rtnl_open(int *ret_fd);
int rtnl_link_set_up(int fd, int ifindex);
/* Leaves exactly address/prefixlen as the interface's IPv4 address. */
int rtnl_addr_replace_ipv4(int fd, int ifindex, uint32_t address_be, uint8_t prefixlen);
/* Creates or replaces 0.0.0.0/0 via gateway on ifindex. */
int rtnl_route_replace_default_ipv4(int fd, int ifindex, uint32_t gateway_be);
/* Deletes the neighbour (ARP/NDP) entries the kernel learned on ifindex
 * (not permanent ones), all of them, in batches; *ret_n is how many went.
 * -EAGAIN if the table still held learned entries after 65536 were
 * deleted (refilled as fast as it is emptied). */
int rtnl_neigh_flush(int fd, int ifindex, unsigned *ret_n);
/* Takes the link down (clears IFF_UP); a link already down is fine. */
int rtnl_link_set_down(int fd, int ifindex);
