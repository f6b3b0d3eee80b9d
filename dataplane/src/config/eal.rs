//! The EAL command line derived from a [`Config`], and the EAL options a config may not
//! set itself because they are derived.

use super::{Config, ConfigError, ConfigErrorKind, Device, EalMemory};

/// What this machine offers EAL in hugepages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Hugepages {
    /// Free hugepage memory of every size, in bytes (`free_hugepages` times the size, from
    /// `/sys/kernel/mm/hugepages/hugepages-*kB/`).
    pub free_bytes: u64,
    /// Whether a hugetlbfs is mounted (`/proc/mounts`), which EAL needs.
    pub mounted: bool,
}

impl Hugepages {
    /// Reads this machine's (and this mount namespace's) hugepages.
    pub fn read() -> Hugepages {
        let mut free_bytes = 0;
        if let Ok(dirs) = std::fs::read_dir("/sys/kernel/mm/hugepages") {
            for d in dirs.flatten() {
                let name = d.file_name().to_string_lossy().into_owned();
                let kb = name.strip_prefix("hugepages-").and_then(|s| s.strip_suffix("kB")).and_then(|s| s.parse::<u64>().ok());
                let free =
                    std::fs::read_to_string(d.path().join("free_hugepages")).ok().and_then(|s| s.trim().parse::<u64>().ok());
                if let (Some(kb), Some(free)) = (kb, free) {
                    free_bytes += kb * 1024 * free;
                }
            }
        }
        let mounted =
            std::fs::read_to_string("/proc/mounts").is_ok_and(|m| m.lines().any(|l| l.split(' ').nth(2) == Some("hugetlbfs")));
        Hugepages { free_bytes, mounted }
    }
}

/// Where EAL's memory comes from on this machine, and the line that says so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemoryPlan {
    /// EAL arguments to add (`-m N`, `--no-huge -m N`, or none when `eal.args` decide).
    pub args: Vec<String>,
    /// One line for the operator, the forwarder's first.
    pub says: String,
}

impl Config {
    /// `eal.memory` decided for a machine with `machine`'s hugepages: hugepages when the
    /// config asks for them, or when it says `auto` and at least `eal.memory_mb` of them are
    /// free on a mounted hugetlbfs; ordinary memory (`--no-huge`) otherwise; nothing added
    /// when `eal.args` say themselves (then `auto` only).
    pub fn memory_plan(&self, machine: &Hugepages) -> MemoryPlan {
        let mb = self.eal.memory_mb;
        let m = vec!["-m".to_owned(), mb.to_string()];
        let free_mb = machine.free_bytes >> 20;
        if let Some(arg) = self.eal.args.iter().find(|a| super::validate::names_memory(a)) {
            return MemoryPlan { args: Vec::new(), says: format!("memory: as eal.args say ({arg})") };
        }
        let huge = |why: String| MemoryPlan { args: m.clone(), says: format!("memory: hugepages, {mb} MiB ({why})") };
        let no_huge = |why: String| MemoryPlan {
            args: [vec!["--no-huge".to_owned()], m.clone()].concat(),
            says: format!("memory: --no-huge, {mb} MiB of ordinary memory ({why})"),
        };
        match self.eal.memory {
            EalMemory::Hugepages => huge("eal.memory = \"hugepages\"".to_owned()),
            EalMemory::NoHuge => no_huge("eal.memory = \"no-huge\"".to_owned()),
            EalMemory::Auto if !machine.mounted => {
                no_huge("eal.memory = \"auto\": no hugetlbfs mounted; ci/setup.sh reserves and mounts hugepages when run as root".to_owned())
            }
            EalMemory::Auto if free_mb < u64::from(mb) => no_huge(format!(
                "eal.memory = \"auto\": {free_mb} MiB of hugepages free, {mb} MiB wanted; ci/setup.sh reserves them when run as root"
            )),
            EalMemory::Auto => huge(format!("eal.memory = \"auto\": {free_mb} MiB of hugepages were free")),
        }
    }

    /// [`Config::eal_args`] with the memory arguments of `plan` (after the derived ones,
    /// before `eal.args`).
    pub fn eal_args_with(&self, program: &str, extra: &[String], plan: &MemoryPlan) -> Vec<String> {
        let mut args = self.eal_args(program, &[]);
        let at = args.len() - self.eal.args.len();
        args.splice(at..at, plan.args.iter().cloned());
        args.extend(extra.iter().cloned());
        args
    }

    /// The argv for `rte_eal_init`: `program`, the lcores (`-l LIST`, or `--lcores
    /// LCORE@CPU,...` when the config places an lcore on a CPU of another number), main
    /// lcore, file prefix, one `-a` per PCI port (with its [`PortConfig::devargs`]); vdevs
    /// are not here: the forwarder creates them after EAL start-up so that a bad one is
    /// reported against its port. `--no-pci` if no port is a PCI device, then `eal.args`,
    /// then `extra` (from the command line).
    pub fn eal_args(&self, program: &str, extra: &[String]) -> Vec<String> {
        let mut lcores: Vec<(u32, Option<u32>)> = self.workers.iter().map(|w| (w.lcore, w.cpu)).collect();
        lcores.push((self.eal.main_lcore, self.eal.main_cpu));
        lcores.sort_unstable();
        let placed = lcores.iter().any(|&(l, c)| c.is_some_and(|c| c != l));
        let (option, list) = if placed {
            let each = lcores.iter().map(|&(l, c)| format!("{l}@{}", c.unwrap_or(l)));
            ("--lcores", each.collect::<Vec<_>>().join(","))
        } else {
            ("-l", lcores.iter().map(|(l, _)| l.to_string()).collect::<Vec<_>>().join(","))
        };

        let mut args = vec![
            program.to_owned(),
            option.to_owned(),
            list,
            "--main-lcore".to_owned(),
            self.eal.main_lcore.to_string(),
            "--file-prefix".to_owned(),
            self.eal.file_prefix.clone(),
        ];
        for port in &self.ports {
            if let Device::Pci { addr } = &port.device {
                args.push("-a".to_owned());
                args.push(with_devargs(addr, &port.devargs()));
            }
        }
        if !self.ports.iter().any(|p| p.device.is_pci()) {
            args.push("--no-pci".to_owned());
        }
        args.extend(self.eal.args.iter().cloned());
        args.extend(extra.iter().cloned());
        args
    }
}

fn with_devargs(device: &str, devargs: &str) -> String {
    if devargs.is_empty() {
        device.to_owned()
    } else {
        format!("{device},{devargs}")
    }
}

/// EAL options the dataplane derives from the config, and from where.
const DERIVED_EAL_OPTIONS: &[(&str, &str)] = &[
    ("-l", "eal.main_lcore and [[worker]] lcore"),
    ("--lcores", "eal.main_lcore, eal.main_cpu and [[worker]] lcore and cpu"),
    ("-c", "eal.main_lcore and [[worker]] lcore"),
    ("--main-lcore", "eal.main_lcore"),
    ("--file-prefix", "eal.file_prefix"),
    ("--vdev", "[[port]] device"),
    ("-a", "[[port]] device"),
    ("--allow", "[[port]] device"),
    ("-b", "[[port]] device"),
    ("--block", "[[port]] device"),
    ("--no-pci", "[[port]] device (added when no port is a PCI device)"),
];

/// Refuses, in the EAL arguments given on the command line after `--`, an option the
/// config derives (the file prefix, lcores, devices), as `eal.args` refuses it: given
/// there it would part EAL from what the config says (a control socket named after one
/// file prefix, telemetry and dumpcap looking under another).
///
/// # Errors
/// [`ConfigErrorKind::ForbiddenEalArg`] for the first such argument, keyed
/// `EAL arguments after --[i]`.
pub fn check_extra_eal_args(extra: &[String]) -> Result<(), ConfigError> {
    for (i, arg) in extra.iter().enumerate() {
        if let Some(from) = derived_eal_option(arg) {
            return Err(ConfigError::new(
                format!("EAL arguments after --[{i}]"),
                ConfigErrorKind::ForbiddenEalArg { arg: arg.clone(), from },
            ));
        }
    }
    Ok(())
}

/// Where `arg` is derived from, if it is one of [`DERIVED_EAL_OPTIONS`], in
/// any spelling getopt accepts: `--vdev`, `--vdev=x`, the unambiguous prefix
/// `--vd`, `-l`, `-l1,2`.
pub(super) fn derived_eal_option(arg: &str) -> Option<&'static str> {
    let name = arg.split_once('=').map_or(arg, |(name, _)| name);
    DERIVED_EAL_OPTIONS
        .iter()
        .find(|(option, _)| {
            if option.starts_with("--") {
                name.len() > 2 && option.starts_with(name)
            } else {
                arg.starts_with(option) && !arg.starts_with("--")
            }
        })
        .map(|&(_, from)| from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::fixtures::*;
    use crate::port::PortIdx;

    #[test]
    fn eal_args_for_null_config() {
        let config = load("null.toml");
        // As on a machine without free hugepages.
        let plan = config.memory_plan(&Hugepages::default());
        assert_eq!(
            config.eal_args_with("dataplane", &strings(&["--log-level", "lib.eal:debug"]), &plan),
            strings(&[
                "dataplane",
                "-l",
                "0,1",
                "--main-lcore",
                "0",
                "--file-prefix",
                "dataplane",
                "--no-pci",
                "--no-huge",
                "-m",
                "512",
                "--log-level",
                "lib.eal:debug",
            ])
        );
    }

    /// Workers placed on CPUs: `--lcores` maps every lcore (the main lcore sleeping beside
    /// worker 1 on CPU 0, worker 2 on CPU 1).
    #[test]
    fn eal_args_place_lcores_on_cpus() {
        let text = format!(
            "{PAIR}{}[[worker]]\nlcore = 1\ncpu = 0\nrx = [{{ port = \"null0\", queue = 0 }}]\n\
             [[worker]]\nlcore = 2\ncpu = 1\nrx = [{{ port = \"null1\", queue = 0 }}]\n",
            PORTS.replace("\"\n\n[[port]]", "\"\ntx_queues = 2\n\n[[port]]") + "tx_queues = 2\n"
        );
        let config = Config::from_toml_str(&text).unwrap();
        assert_eq!(config.workers.iter().map(|w| (w.lcore, w.cpu)).collect::<Vec<_>>(), [(1, Some(0)), (2, Some(1))]);
        let args = config.eal_args("dataplane", &[]);
        assert_eq!(args[1..5], strings(&["--lcores", "0@0,1@0,2@1", "--main-lcore", "0"]));
        // The main lcore placed too; the rendered config keeps the keys.
        let moved = Config::from_toml_str(&text.replace("[forward]", "[eal]\nmain_cpu = 1\n[forward]")).unwrap();
        assert_eq!(moved.eal_args("x", &[])[2], "0@1,1@0,2@1");
        assert_eq!(Config::from_toml_str(&moved.to_toml()).unwrap(), moved);
        // A CPU of the lcore's own number changes nothing: the plain list.
        let same = Config::from_toml_str(&text.replace("cpu = 0", "cpu = 1").replace("lcore = 2\ncpu = 1", "lcore = 2")).unwrap();
        assert_eq!(same.eal_args("x", &[])[1..3], strings(&["-l", "0,1,2"]));
        assert_eq!(load("null.toml").eal_args("x", &[])[1..3], strings(&["-l", "0,1"]));
    }

    /// auto: hugepages when enough are free on a mount, else --no-huge, said on one line;
    /// arguments that name the memory decide themselves.
    #[test]
    fn memory_follows_the_machine() {
        let base = Config::from_toml_str(&valid()).unwrap();
        assert_eq!(base.eal.memory, EalMemory::Auto);
        let plenty = Hugepages { free_bytes: 2048 << 20, mounted: true };
        let plan = base.memory_plan(&plenty);
        assert_eq!(plan.args, strings(&["-m", "512"]));
        assert!(plan.says.starts_with("memory: hugepages, 512 MiB"), "{}", plan.says);
        for machine in [Hugepages { free_bytes: 100 << 20, mounted: true }, Hugepages { free_bytes: 2048 << 20, mounted: false }]
        {
            let plan = base.memory_plan(&machine);
            assert_eq!(plan.args, strings(&["--no-huge", "-m", "512"]));
            assert!(plan.says.starts_with("memory: --no-huge, 512 MiB") && plan.says.contains("ci/setup.sh"), "{}", plan.says);
        }
        let args = base.eal_args_with("x", &strings(&["--log-level", "8"]), &plan);
        assert_eq!(args[args.len() - 5..], strings(&["--no-pci", "-m", "512", "--log-level", "8"]));
        // Named in eal.args: nothing added.
        let explicit = Config::from_toml_str(&format!("[eal]\nargs = [\"--no-huge\"]\n{}", valid())).unwrap();
        assert_eq!(
            explicit.memory_plan(&plenty),
            MemoryPlan { args: vec![], says: "memory: as eal.args say (--no-huge)".into() }
        );
        // Asked for: always that.
        let huge = Config::from_toml_str(&format!("[eal]\nmemory = \"hugepages\"\nmemory_mb = 64\n{}", valid())).unwrap();
        assert_eq!(huge.memory_plan(&Hugepages::default()).args, strings(&["-m", "64"]));
        let no = Config::from_toml_str(&format!("[eal]\nmemory = \"no-huge\"\n{}", valid())).unwrap();
        assert_eq!(no.memory_plan(&plenty).args, strings(&["--no-huge", "-m", "512"]));
        // Both at once: refused, naming the argument.
        let both = Config::from_toml_str(&format!("[eal]\nmemory = \"no-huge\"\nargs = [\"-m\", \"64\"]\n{}", valid()));
        assert_eq!(both.unwrap_err().key, "eal.args[0]");
    }

    #[test]
    fn eal_args_for_pci_config() {
        let config = Config::from_toml_str(
            r#"
[eal]
main_lcore = 3

[forward]
pairs = [["p0", "p1"], ["v", "v"]]

[[port]]
name = "p0"
device = "03:00.0"
args = "txq_inline_max=128"
rx_buffer = "multi_packet"
[port.mprq]
log_stride_num = 5

[[port]]
name = "p1"
device = "0000:03:00.1"

[[port]]
name = "v"
device = "net_ring_a"

[[worker]]
lcore = 2
rx = [{ port = "p0", queue = 0 }, { port = "p1", queue = 0 }, { port = "v", queue = 0 }]
"#,
        )
        .unwrap();
        assert_eq!(config.ports[0].device, Device::Pci { addr: "0000:03:00.0".into() });
        assert_eq!(config.ports[2].device, Device::Vdev { name: "net_ring_a".into(), driver: "net_ring_a".into() });
        assert_eq!(config.out_port(PortIdx(2)), Some(PortIdx(2)));
        let args = config.eal_args("dp", &[]);
        assert_eq!(
            args,
            strings(&[
                "dp",
                "-l",
                "2,3",
                "--main-lcore",
                "3",
                "--file-prefix",
                "dataplane",
                "-a",
                "0000:03:00.0,txq_inline_max=128,mprq_en=1,mprq_log_stride_num=5,\
                 mprq_log_stride_size=11,mprq_max_memcpy_len=128,rxqs_min_mprq=1",
                "-a",
                "0000:03:00.1",
            ])
        );
        assert!(!args.contains(&"--no-pci".to_string()));
    }

    #[test]
    fn mlx5_template_enables_mprq() {
        let config = load("mlx5.toml");
        assert_eq!(config.workers.len(), 2);
        let args = config.eal_args("dataplane", &[]);
        assert!(!args.contains(&"--no-pci".to_string()));
        assert!(args.contains(&"-l".to_string()) && args.contains(&"0,1,2".to_string()));
        let a = args.iter().position(|s| s == "-a").unwrap();
        assert!(args[a + 1].starts_with("0000:03:00.0,"), "{}", args[a + 1]);
        assert!(args[a + 1].contains("mprq_en=1"), "{}", args[a + 1]);
    }

    #[test]
    fn harmless_eal_args_pass() {
        for arg in ["--no-huge", "-m", "512", "--in-memory", "--log-level=lib.eal:debug", "-n", "4", "--no-telemetry"] {
            assert_eq!(derived_eal_option(arg), None, "{arg}");
        }
    }
}
