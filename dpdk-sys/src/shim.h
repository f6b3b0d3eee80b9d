/*
 * dp_* wrappers around DPDK functions that are `static inline` (or macros) in the
 * headers and so have no symbol to link against. Each wrapper is a one-line call;
 * shim.c is compiled with exactly `pkg-config --cflags libdpdk`.
 */
#ifndef DATAPLANE_SHIM_H
#define DATAPLANE_SHIM_H

#include <stdint.h>

struct rte_mbuf;
struct rte_mempool;
struct rte_ring;

/* ethdev fast path */
uint16_t dp_eth_rx_burst(uint16_t port_id, uint16_t queue_id, struct rte_mbuf **rx_pkts, uint16_t nb_pkts);
uint16_t dp_eth_tx_burst(uint16_t port_id, uint16_t queue_id, struct rte_mbuf **tx_pkts, uint16_t nb_pkts);

/* mbuf */
struct rte_mbuf *dp_pktmbuf_alloc(struct rte_mempool *mp);
int dp_pktmbuf_alloc_bulk(struct rte_mempool *mp, struct rte_mbuf **mbufs, unsigned int count);
void dp_pktmbuf_free(struct rte_mbuf *m);
void *dp_pktmbuf_data(const struct rte_mbuf *m);
char *dp_pktmbuf_append(struct rte_mbuf *m, uint16_t len);
char *dp_pktmbuf_adj(struct rte_mbuf *m, uint16_t len);
int dp_pktmbuf_trim(struct rte_mbuf *m, uint16_t len);
int dp_pktmbuf_chain(struct rte_mbuf *head, struct rte_mbuf *tail);
uint16_t dp_pktmbuf_tailroom(const struct rte_mbuf *m);
uint16_t dp_mbuf_refcnt_read(const struct rte_mbuf *m);
struct rte_mempool *dp_mbuf_pool(const struct rte_mbuf *m);

/* mempool */
int dp_mempool_get_bulk(struct rte_mempool *mp, void **obj_table, unsigned int n);
void dp_mempool_put_bulk(struct rte_mempool *mp, void *const *obj_table, unsigned int n);

/* ring */
unsigned int dp_ring_enqueue_burst(struct rte_ring *r, void *const *obj_table, unsigned int n, unsigned int *free_space);
unsigned int dp_ring_dequeue_burst(struct rte_ring *r, void **obj_table, unsigned int n, unsigned int *available);
unsigned int dp_ring_count(const struct rte_ring *r);

/* ethdev constants that are macro expressions bindgen cannot evaluate */
uint64_t dp_eth_rss_ip_tcp_udp(void);

/* lcore, time, errno */
unsigned int dp_lcore_id(void);
uint64_t dp_rdtsc(void);
void dp_pause(void);
int dp_errno(void);

/* lpm: rte_lpm_lookup and rte_lpm_lookup_bulk are static inline (rte_lpm6's are not) */
struct rte_lpm;
int dp_lpm_lookup(const struct rte_lpm *lpm, uint32_t ip, uint32_t *next_hop);
int dp_lpm_lookup_bulk(const struct rte_lpm *lpm, const uint32_t *ips, uint32_t *next_hops, unsigned int n);

/* hash: rte_hash_crc (CRC32-C, SSE4.2 where the CPU has it) is static inline */
uint32_t dp_hash_crc(const void *data, uint32_t data_len, uint32_t init_val);

/* rcu: rte_rcu_qsbr's reader calls and the writer's start/check are static inline */
struct rte_rcu_qsbr;
void dp_rcu_qsbr_thread_online(struct rte_rcu_qsbr *v, unsigned int thread_id);
void dp_rcu_qsbr_thread_offline(struct rte_rcu_qsbr *v, unsigned int thread_id);
void dp_rcu_qsbr_quiescent(struct rte_rcu_qsbr *v, unsigned int thread_id);
uint64_t dp_rcu_qsbr_start(struct rte_rcu_qsbr *v);
int dp_rcu_qsbr_check(struct rte_rcu_qsbr *v, uint64_t t, int wait);

#endif
