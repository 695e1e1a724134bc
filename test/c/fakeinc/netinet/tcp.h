/*
 * A minimal <netinet/tcp.h> standing in for a C library that lacks every
 * TCP repair declaration: no struct tcp_repair_opt, struct
 * tcp_repair_window, TCP_*_QUEUE enum, TCP_TIMESTAMP or TCP_REPAIR_WINDOW.
 * Used with -std=c11 (glibc then hides its own __USE_MISC declarations),
 * so that soccr.h must supply them all.
 */
#ifndef _NETINET_TCP_H
#define _NETINET_TCP_H 1

#define TCP_NODELAY	1
#define TCP_MAXSEG	2
#define TCP_INFO	11
#define TCP_REPAIR	19
#define TCP_REPAIR_QUEUE 20
#define TCP_QUEUE_SEQ	21
#define TCP_REPAIR_OPTIONS 22

#endif
