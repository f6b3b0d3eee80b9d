//! The typed [`Config`] back to TOML: the raw layer filled from it and serialised, every
//! key spelled out, so that [`Config::from_toml_str`] of the text gives the same config
//! (`dataplane ctl show config`; tested on every shipped config and on live changes).

use super::raw;
use super::*;

impl Config {
    /// The config as TOML text that loads back to an equal [`Config`].
    pub fn to_toml(&self) -> String {
        toml::to_string(&self.to_raw()).expect("the raw config has only TOML-representable values")
    }

    fn to_raw(&self) -> raw::File {
        let name = |p: PortIdx| self.port(p).name.clone();
        raw::File {
            eal: raw::Eal {
                memory: self.eal.memory,
                memory_mb: self.eal.memory_mb.into(),
                main_lcore: self.eal.main_lcore.into(),
                main_cpu: self.eal.main_cpu.map(i64::from),
                file_prefix: self.eal.file_prefix.clone(),
                args: self.eal.args.clone(),
            },
            pool: raw::Pool {
                mbufs: self.pool.mbufs.map_or(0, i64::from),
                cache: self.pool.cache.into(),
                data_room: self.pool.data_room.into(),
                priv_size: self.pool.priv_size.into(),
            },
            forward: raw::Forward {
                mode: self.forward.mode,
                burst: self.forward.burst.into(),
                pairs: self.forward.pairs.iter().map(|&(a, b)| vec![name(a), name(b)]).collect(),
            },
            poll: raw::Poll {
                budget: self.poll.budget.into(),
                budget_usecs: self.poll.budget_usecs.into(),
                tx_drain_usecs: self.poll.tx_drain_usecs.into(),
                sample_every: self.poll.sample_every.into(),
                idle_backoff: self.poll.idle.as_ref().map(|b| raw::IdleBackoff {
                    pause_after: b.pause_after.into(),
                    sleep_after: b.sleep_after.into(),
                    sleep_usecs: b.sleep_usecs.into(),
                }),
            },
            port: self.ports.iter().map(render_port).collect(),
            worker: self
                .workers
                .iter()
                .map(|w| raw::Worker {
                    lcore: Some(w.lcore.into()),
                    cpu: w.cpu.map(i64::from),
                    rx: w.rx.iter().map(|r| raw::RxRef { port: Some(name(r.port)), queue: Some(r.queue.into()) }).collect(),
                })
                .collect(),
            route: self
                .routes
                .iter()
                .map(|r| raw::Route {
                    prefix: Some(r.prefix.to_string()),
                    port: Some(name(r.port)),
                    via: r.via.map(|v| v.to_string()),
                    via_mac: r.via_mac.map(|m| m.to_string()),
                })
                .collect(),
            extensions: raw::Extensions {
                trace_every: self.extensions.trace_every.into(),
                flow: self.extensions.flow,
                areas: self.extensions.areas.into(),
            },
            mirror: self
                .mirror
                .as_ref()
                .map(|m| raw::Mirror { port: Some(name(m.port)), proto: Some(m.proto.map_or("any", |p| p.name()).to_owned()) }),
            accounting: self.accounting.as_ref().map(render_accounting),
            neighbour: render_neighbour(&self.neighbour),
            fib: raw::Fib {
                ipv4_max_routes: self.fib.ipv4_max_routes.into(),
                ipv4_tbl8_groups: self.fib.ipv4_tbl8_groups.into(),
                ipv6_max_routes: self.fib.ipv6_max_routes.into(),
                ipv6_tbl8_groups: self.fib.ipv6_tbl8_groups.into(),
                max_next_hops: self.fib.max_next_hops.into(),
            },
            control: raw::Control {
                socket: self.control.socket.as_ref().map(|p| p.display().to_string()),
                max_clients: self.control.max_clients.into(),
                idle_timeout_ms: self.control.idle_timeout_ms.into(),
                max_request_bytes: self.control.max_request_bytes.into(),
            },
            fpm: self.fpm.as_ref().map(|f| raw::Fpm {
                listen: f.listen.to_string(),
                sweep_after_ms: f.sweep_after.as_millis() as i64,
                replay_quiet_ms: f.replay_quiet.as_millis() as i64,
            }),
            metrics: self.metrics.as_ref().map(|m| raw::Metrics { listen: m.listen.to_string() }),
        }
    }
}

fn render_neighbour(n: &crate::neigh::NeighParams) -> raw::Neighbour {
    raw::Neighbour {
        base_reachable_time_ms: n.base_reachable_time.as_millis() as i64,
        retrans_time_ms: n.retrans_time.as_millis() as i64,
        delay_first_probe_time: n.delay_first_probe_time.as_secs() as i64,
        mcast_solicit: n.mcast_solicit.into(),
        ucast_solicit: n.ucast_solicit.into(),
        mcast_resolicit: n.mcast_resolicit.into(),
        unres_qlen: n.unres_qlen.into(),
        unres_qlen_under_pressure: n.unres_qlen_under_pressure.into(),
        gc_stale_time: n.gc_stale_time.as_secs() as i64,
        gc_thresh1: n.gc_thresh1.into(),
        gc_thresh2: n.gc_thresh2.into(),
        gc_thresh3: n.gc_thresh3.into(),
        arp_notify: n.arp_notify,
        ndisc_notify: n.ndisc_notify,
    }
}

fn render_port(p: &PortConfig) -> raw::Port {
    let (rx_buffer, mprq) = match &p.rx_buffer {
        RxBuffer::PerPacket => (raw::RxBuffer::PerPacket, None),
        RxBuffer::MultiPacket(m) => (
            raw::RxBuffer::MultiPacket,
            Some(raw::Mprq {
                log_stride_num: m.log_stride_num.into(),
                log_stride_size: m.log_stride_size.into(),
                max_memcpy_len: m.max_memcpy_len.into(),
                rxqs_min: m.rxqs_min.into(),
            }),
        ),
    };
    raw::Port {
        name: Some(p.name.clone()),
        device: Some(p.device.name().to_owned()),
        args: p.args.clone(),
        rx_queues: p.rx_queues.into(),
        tx_queues: p.tx_queues.into(),
        rx_desc: p.rx_desc.into(),
        tx_desc: p.tx_desc.into(),
        promiscuous: p.promiscuous,
        mtu: p.mtu.map(i64::from),
        rx_buffer,
        mprq,
        peer_mac: p.peer_mac.map(|m| m.to_string()),
        ipv4: p.ipv4.map(|a| a.to_string()),
        ipv6: p.ipv6.map(|a| a.to_string()),
        check_chains: p.check_chains,
        kernel_name: p.kernel_name.clone(),
    }
}

fn render_accounting(a: &AccountingConf) -> raw::Accounting {
    let limits = |i: usize| {
        let l = a.limits[i];
        Some(raw::Limits { min: l.min as i64, pressure: l.pressure as i64, max: l.max as i64 })
    };
    raw::Accounting {
        batch_pages: a.batch_pages.into(),
        backlog: a.backlog.into(),
        backlog_under_pressure: a.backlog_under_pressure.into(),
        backlog_bypass: a.backlog_bypass,
        punt_bypass: a.punt_bypass,
        port_budget: a.port_budget as i64,
        slow_path_budget: a.slow_path_budget as i64,
        neigh_queue_bypass: a.neigh_queue_bypass,
        neigh_queue_budget: a.neigh_queue_budget as i64,
        tcp: limits(0),
        udp: limits(1),
        icmp: limits(2),
        other: limits(3),
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use super::*;

    #[test]
    fn every_shipped_config_round_trips() {
        for name in ["null.toml", "pcap.toml", "l3fwd.toml", "mlx5.toml", "e1000.toml", "l2fwd-2port.toml", "l3fwd-2port.toml"] {
            let config = load(name);
            let text = config.to_toml();
            let again = Config::from_toml_str(&text).unwrap_or_else(|e| panic!("{name}: {e}\n{text}"));
            assert_eq!(again, config, "{name}\n{text}");
            assert_eq!(again.to_toml(), text, "{name}: rendering is stable");
        }
    }

    #[test]
    fn every_optional_key_round_trips() {
        let text = format!(
            "{}[mirror]\nport = \"null1\"\nproto = \"udp\"\n[accounting]\nbacklog = 90\ntcp = {{ min = 1, pressure = 2, max = 3 }}\n\
             [poll.idle_backoff]\nsleep_usecs = 7\n[extensions]\ntrace_every = 3\n[fib]\nipv4_max_routes = 77\n\
             [control]\nsocket = \"/tmp/x.sock\"\n",
            with_port1("mtu = 1500\nipv4 = \"10.0.0.1/24\"\nipv6 = \"2001:db8::1/64\"\ncheck_chains = false\npeer_mac = \"02:00:00:00:00:09\"\nkernel_name = \"eth1\"")
                .replace("[forward]\n", "[eal]\nmain_cpu = 1\n[forward]\nmode = \"macswap\"\n")
                .replace("lcore = 1\n", "lcore = 1\ncpu = 0\n")
        );
        let config = Config::from_toml_str(&text).unwrap();
        assert_eq!((config.eal.main_cpu, config.workers[0].cpu), (Some(1), Some(0)));
        assert_eq!(Config::from_toml_str(&config.to_toml()).unwrap(), config, "{}", config.to_toml());
        let fpm = format!("{}[fpm]\nlisten = \"[::1]:2700\"\nsweep_after_ms = 2500\n", l3fwd());
        let config = Config::from_toml_str(&fpm).unwrap();
        assert!(config.fpm.is_some());
        assert_eq!(Config::from_toml_str(&config.to_toml()).unwrap(), config, "{}", config.to_toml());
    }
}
