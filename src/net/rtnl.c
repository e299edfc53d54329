#include "rtnl.h"

#include <errno.h>
#include <stdbool.h>
#include <linux/if_addr.h>
#include <linux/neighbour.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/macro.h"

struct nl_req {
	struct nlmsghdr nh;
	union {
		struct ifinfomsg ifi;
		struct ifaddrmsg ifa;
		struct rtmsg rtm;
		struct ndmsg ndm;
	};
	uint8_t attrs[64];
};

int rtnl_open(int *ret_fd)
{
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK };
	_cleanup_close_ int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);

	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return -errno;
	*ret_fd = TAKE_FD(fd);
	return 0;
}

static void nl_add_attr(struct nl_req *req, uint16_t type, const void *data, uint16_t len)
{
	struct rtattr *rta = (struct rtattr *)((uint8_t *)req + NLMSG_ALIGN(req->nh.nlmsg_len));
	rta->rta_type = type;
	rta->rta_len = (uint16_t)RTA_LENGTH(len);
	memcpy(RTA_DATA(rta), data, len);
	req->nh.nlmsg_len = NLMSG_ALIGN(req->nh.nlmsg_len) + RTA_ALIGN(rta->rta_len);
}

/* Reads the answers to request seq until its ACK/error or the end of a
 * dump, handing every other message to on_msg (may be NULL). */
static int nl_receive(int fd, uint32_t seq, void (*on_msg)(struct nlmsghdr *h, void *ud), void *ud)
{
	uint8_t buf[16384];

	for (;;) {
		ssize_t n = recv(fd, buf, sizeof(buf), 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, (size_t)n); h = NLMSG_NEXT(h, n)) {
			if (h->nlmsg_seq != seq)
				continue;
			if (h->nlmsg_type == NLMSG_ERROR)
				return ((struct nlmsgerr *)NLMSG_DATA(h))->error;
			if (h->nlmsg_type == NLMSG_DONE)
				return 0;
			if (on_msg)
				on_msg(h, ud);
		}
	}
}

static uint32_t nl_seq;

/* Sends one request and waits for its acknowledgement. */
static int nl_transact(int fd, struct nl_req *req)
{
	req->nh.nlmsg_seq = ++nl_seq;
	req->nh.nlmsg_flags |= NLM_F_REQUEST | NLM_F_ACK;
	if (send(fd, req, req->nh.nlmsg_len, 0) < 0)
		return -errno;
	return nl_receive(fd, req->nh.nlmsg_seq, NULL, NULL);
}

/* Sends a dump request and hands every entry to on_msg. */
static int nl_dump(int fd, struct nl_req *req, void (*on_msg)(struct nlmsghdr *h, void *ud), void *ud)
{
	req->nh.nlmsg_seq = ++nl_seq;
	req->nh.nlmsg_flags |= NLM_F_REQUEST | NLM_F_DUMP;
	if (send(fd, req, req->nh.nlmsg_len, 0) < 0)
		return -errno;
	return nl_receive(fd, req->nh.nlmsg_seq, on_msg, ud);
}

/* The first attribute of that type among those after the fixed header of
 * message h (hdrlen bytes), or NULL. */
static struct rtattr *nl_find_attr(struct nlmsghdr *h, size_t hdrlen, uint16_t type)
{
	int len = (int)h->nlmsg_len - (int)NLMSG_LENGTH(hdrlen);
	struct rtattr *rta = (struct rtattr *)((uint8_t *)NLMSG_DATA(h) + NLMSG_ALIGN(hdrlen));

	for (; RTA_OK(rta, len); rta = RTA_NEXT(rta, len))
		if (rta->rta_type == type)
			return rta;
	return NULL;
}

/* Sets or clears IFF_UP only (ifi_change), whatever else the link has. */
static int link_set_up_flag(int fd, int ifindex, bool up)
{
	struct nl_req req = {
		.nh = { .nlmsg_len = NLMSG_LENGTH(sizeof(struct ifinfomsg)), .nlmsg_type = RTM_NEWLINK },
		.ifi = { .ifi_family = AF_UNSPEC,
			 .ifi_index = ifindex,
			 .ifi_flags = up ? IFF_UP : 0,
			 .ifi_change = IFF_UP },
	};
	return nl_transact(fd, &req);
}

int rtnl_link_set_up(int fd, int ifindex)
{
	return link_set_up_flag(fd, ifindex, true);
}

int rtnl_link_set_down(int fd, int ifindex)
{
	return link_set_up_flag(fd, ifindex, false);
}

static int addr_request(int fd, uint16_t type, uint16_t flags, int ifindex, uint32_t address_be, uint8_t prefixlen)
{
	struct nl_req req = {
		.nh = { .nlmsg_len = NLMSG_LENGTH(sizeof(struct ifaddrmsg)), .nlmsg_type = type, .nlmsg_flags = flags },
		.ifa = { .ifa_family = AF_INET,
			 .ifa_prefixlen = prefixlen,
			 .ifa_index = (uint32_t)ifindex,
			 .ifa_scope = RT_SCOPE_UNIVERSE },
	};
	nl_add_attr(&req, IFA_LOCAL, &address_be, 4);
	nl_add_attr(&req, IFA_ADDRESS, &address_be, 4);
	if (type == RTM_NEWADDR && prefixlen < 31) {
		uint32_t mask = prefixlen ? htonl(~0u << (32 - prefixlen)) : 0;
		uint32_t brd = address_be | ~mask;
		nl_add_attr(&req, IFA_BROADCAST, &brd, 4);
	}
	return nl_transact(fd, &req);
}

/* Addresses of one interface collected from a dump: its own (with a
 * prefix length) or its neighbours'. */
struct ip_entry {
	uint8_t family;
	uint8_t prefixlen;
	uint8_t addr[16]; /* network order; 4 bytes used for AF_INET */
};

struct ip_list {
	int ifindex;
	struct ip_entry *entries;
	size_t n, max;
};

static void addr_list_add(struct nlmsghdr *h, void *ud)
{
	struct ip_list *l = ud;
	struct ifaddrmsg *ifa = NLMSG_DATA(h);

	if (h->nlmsg_type != RTM_NEWADDR || (int)ifa->ifa_index != l->ifindex || l->n == l->max)
		return;
	struct rtattr *rta = nl_find_attr(h, sizeof(*ifa), IFA_LOCAL);
	if (!rta || RTA_PAYLOAD(rta) != 4)
		return;
	l->entries[l->n] = (struct ip_entry){ .family = AF_INET, .prefixlen = ifa->ifa_prefixlen };
	memcpy(l->entries[l->n].addr, RTA_DATA(rta), 4);
	l->n++;
}

/* Lists the IPv4 addresses of one interface (at most max). */
static int addr_list(int fd, int ifindex, struct ip_entry *out, size_t max, size_t *ret_n)
{
	struct nl_req req = {
		.nh = { .nlmsg_len = NLMSG_LENGTH(sizeof(struct ifaddrmsg)), .nlmsg_type = RTM_GETADDR },
		.ifa = { .ifa_family = AF_INET },
	};
	struct ip_list l = { .ifindex = ifindex, .entries = out, .max = max };
	int r = nl_dump(fd, &req, addr_list_add, &l);

	if (r < 0)
		return r;
	*ret_n = l.n;
	return 0;
}

int rtnl_addr_replace_ipv4(int fd, int ifindex, uint32_t address_be, uint8_t prefixlen)
{
	struct ip_entry old[32];
	size_t n = 0;
	int r;

	r = addr_list(fd, ifindex, old, ARRAY_SIZE(old), &n);
	if (r < 0)
		return r;
	for (size_t i = 0; i < n; i++) {
		uint32_t old_be;
		memcpy(&old_be, old[i].addr, 4);
		if (old_be == address_be && old[i].prefixlen == prefixlen)
			continue;
		r = addr_request(fd, RTM_DELADDR, 0, ifindex, old_be, old[i].prefixlen);
		if (r < 0 && r != -EADDRNOTAVAIL)
			return r;
	}
	return addr_request(fd, RTM_NEWADDR, NLM_F_CREATE | NLM_F_REPLACE, ifindex, address_be, prefixlen);
}

int rtnl_route_replace_default_ipv4(int fd, int ifindex, uint32_t gateway_be)
{
	struct nl_req req = {
		.nh = { .nlmsg_len = NLMSG_LENGTH(sizeof(struct rtmsg)),
			.nlmsg_type = RTM_NEWROUTE,
			.nlmsg_flags = NLM_F_CREATE | NLM_F_REPLACE },
		.rtm = { .rtm_family = AF_INET,
			 .rtm_dst_len = 0,
			 .rtm_table = RT_TABLE_MAIN,
			 .rtm_protocol = RTPROT_BOOT,
			 .rtm_scope = RT_SCOPE_UNIVERSE,
			 .rtm_type = RTN_UNICAST },
	};
	uint32_t oif = (uint32_t)ifindex;

	nl_add_attr(&req, RTA_GATEWAY, &gateway_be, 4);
	nl_add_attr(&req, RTA_OIF, &oif, 4);
	return nl_transact(fd, &req);
}

static void neigh_list_add(struct nlmsghdr *h, void *ud)
{
	struct ip_list *l = ud;
	struct ndmsg *ndm = NLMSG_DATA(h);

	/* Static entries were put there on purpose: only learned ones go. */
	if (h->nlmsg_type != RTM_NEWNEIGH || ndm->ndm_ifindex != l->ifindex || l->n == l->max ||
	    (ndm->ndm_state & (NUD_PERMANENT | NUD_NOARP)))
		return;
	struct rtattr *rta = nl_find_attr(h, sizeof(*ndm), NDA_DST);
	size_t len = rta ? RTA_PAYLOAD(rta) : 0;
	if (len != 4 && len != 16)
		return;
	l->entries[l->n] = (struct ip_entry){ .family = ndm->ndm_family };
	memcpy(l->entries[l->n].addr, RTA_DATA(rta), len);
	l->n++;
}

/* One dump collects at most a batch; the flush dumps again until a dump
 * comes back short, so any number is forgotten without an unbounded
 * buffer. The kernel holds at most gc_thresh3 entries per family (1024 by
 * default): the rounds' bound is far above any real table, and exists so
 * that a table refilled as fast as it is emptied ends in an error. */
#define NEIGH_BATCH 256
#define NEIGH_MAX_ROUNDS 256

static int neigh_flush_batch(int fd, int ifindex, unsigned *n, size_t *ret_found)
{
	struct nl_req req = {
		.nh = { .nlmsg_len = NLMSG_LENGTH(sizeof(struct ndmsg)), .nlmsg_type = RTM_GETNEIGH },
		.ndm = { .ndm_family = AF_UNSPEC },
	};
	struct ip_entry found[NEIGH_BATCH];
	struct ip_list l = { .ifindex = ifindex, .entries = found, .max = ARRAY_SIZE(found) };
	int r = nl_dump(fd, &req, neigh_list_add, &l);

	if (r < 0)
		return r;
	for (size_t i = 0; i < l.n; i++) {
		struct nl_req del = {
			.nh = { .nlmsg_len = NLMSG_LENGTH(sizeof(struct ndmsg)), .nlmsg_type = RTM_DELNEIGH },
			.ndm = { .ndm_family = found[i].family, .ndm_ifindex = ifindex },
		};
		nl_add_attr(&del, NDA_DST, found[i].addr, found[i].family == AF_INET ? 4 : 16);
		r = nl_transact(fd, &del);
		if (r < 0 && r != -ENOENT)
			return r;
		*n += r == 0;
	}
	*ret_found = l.n;
	return 0;
}

int rtnl_neigh_flush(int fd, int ifindex, unsigned *ret_n)
{
	unsigned n = 0;

	for (int round = 0; round < NEIGH_MAX_ROUNDS; round++) {
		size_t found;
		int r = neigh_flush_batch(fd, ifindex, &n, &found);
		if (r < 0)
			return r;
		if (found < NEIGH_BATCH) {
			*ret_n = n;
			return 0;
		}
	}
	return -EAGAIN;
}
