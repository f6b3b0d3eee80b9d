#include <rte_branch_prediction.h>
#include <rte_cycles.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_hash_crc.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_pause.h>
#include <rte_ring.h>

#include "shim.h"

uint16_t dp_eth_rx_burst(uint16_t port_id, uint16_t queue_id, struct rte_mbuf **rx_pkts, uint16_t nb_pkts)
{
	return rte_eth_rx_burst(port_id, queue_id, rx_pkts, nb_pkts);
}

uint16_t dp_eth_tx_burst(uint16_t port_id, uint16_t queue_id, struct rte_mbuf **tx_pkts, uint16_t nb_pkts)
{
	return rte_eth_tx_burst(port_id, queue_id, tx_pkts, nb_pkts);
}

struct rte_mbuf *dp_pktmbuf_alloc(struct rte_mempool *mp)
{
	return rte_pktmbuf_alloc(mp);
}

int dp_pktmbuf_alloc_bulk(struct rte_mempool *mp, struct rte_mbuf **mbufs, unsigned int count)
{
	return rte_pktmbuf_alloc_bulk(mp, mbufs, count);
}

void dp_pktmbuf_free(struct rte_mbuf *m)
{
	rte_pktmbuf_free(m);
}

void *dp_pktmbuf_data(const struct rte_mbuf *m)
{
	return rte_pktmbuf_mtod(m, void *);
}

char *dp_pktmbuf_append(struct rte_mbuf *m, uint16_t len)
{
	return rte_pktmbuf_append(m, len);
}

char *dp_pktmbuf_adj(struct rte_mbuf *m, uint16_t len)
{
	return rte_pktmbuf_adj(m, len);
}

int dp_pktmbuf_trim(struct rte_mbuf *m, uint16_t len)
{
	return rte_pktmbuf_trim(m, len);
}

int dp_pktmbuf_chain(struct rte_mbuf *head, struct rte_mbuf *tail)
{
	return rte_pktmbuf_chain(head, tail);
}

uint16_t dp_pktmbuf_tailroom(const struct rte_mbuf *m)
{
	return rte_pktmbuf_tailroom(m);
}

uint16_t dp_mbuf_refcnt_read(const struct rte_mbuf *m)
{
	return rte_mbuf_refcnt_read(m);
}

struct rte_mempool *dp_mbuf_pool(const struct rte_mbuf *m)
{
	return m->pool;
}

int dp_mempool_get_bulk(struct rte_mempool *mp, void **obj_table, unsigned int n)
{
	return rte_mempool_get_bulk(mp, obj_table, n);
}

void dp_mempool_put_bulk(struct rte_mempool *mp, void *const *obj_table, unsigned int n)
{
	rte_mempool_put_bulk(mp, obj_table, n);
}

unsigned int dp_ring_enqueue_burst(struct rte_ring *r, void *const *obj_table, unsigned int n, unsigned int *free_space)
{
	return rte_ring_enqueue_burst(r, obj_table, n, free_space);
}

unsigned int dp_ring_dequeue_burst(struct rte_ring *r, void **obj_table, unsigned int n, unsigned int *available)
{
	return rte_ring_dequeue_burst(r, obj_table, n, available);
}

unsigned int dp_ring_count(const struct rte_ring *r)
{
	return rte_ring_count(r);
}

unsigned int dp_lcore_id(void)
{
	return rte_lcore_id();
}

uint64_t dp_rdtsc(void)
{
	return rte_rdtsc();
}

void dp_pause(void)
{
	rte_pause();
}

int dp_errno(void)
{
	return rte_errno;
}

uint64_t dp_eth_rss_ip_tcp_udp(void)
{
	return RTE_ETH_RSS_IP | RTE_ETH_RSS_TCP | RTE_ETH_RSS_UDP;
}

#include <rte_lpm.h>

int dp_lpm_lookup(const struct rte_lpm *lpm, uint32_t ip, uint32_t *next_hop)
{
	return rte_lpm_lookup(lpm, ip, next_hop);
}

int dp_lpm_lookup_bulk(const struct rte_lpm *lpm, const uint32_t *ips, uint32_t *next_hops, unsigned int n)
{
	return rte_lpm_lookup_bulk(lpm, ips, next_hops, n);
}

#include <rte_rcu_qsbr.h>

void dp_rcu_qsbr_thread_online(struct rte_rcu_qsbr *v, unsigned int thread_id)
{
	rte_rcu_qsbr_thread_online(v, thread_id);
}

void dp_rcu_qsbr_thread_offline(struct rte_rcu_qsbr *v, unsigned int thread_id)
{
	rte_rcu_qsbr_thread_offline(v, thread_id);
}

void dp_rcu_qsbr_quiescent(struct rte_rcu_qsbr *v, unsigned int thread_id)
{
	rte_rcu_qsbr_quiescent(v, thread_id);
}

uint64_t dp_rcu_qsbr_start(struct rte_rcu_qsbr *v)
{
	return rte_rcu_qsbr_start(v);
}

int dp_rcu_qsbr_check(struct rte_rcu_qsbr *v, uint64_t t, int wait)
{
	return rte_rcu_qsbr_check(v, t, wait != 0);
}

uint32_t dp_hash_crc(const void *data, uint32_t data_len, uint32_t init_val)
{
	return rte_hash_crc(data, data_len, init_val);
}
