//! The EAL command line derived from a [`Config`], and the EAL options a config may not
//! set itself because they are derived.

use super::{Config, ConfigError, ConfigErrorKind, Device};

impl Config {
    /// The argv for `rte_eal_init`: `program`, the lcore list, main lcore,
    /// file prefix, one `-a` per PCI port (with its [`PortConfig::devargs`]);
    /// vdevs are not here: the forwarder creates them after EAL start-up so that
    /// a bad one is reported against its port. `--no-pci` if no port is a PCI
    /// device, then `eal.args`, then `extra` (from the command line).
    pub fn eal_args(&self, program: &str, extra: &[String]) -> Vec<String> {
        let mut lcores: Vec<u32> = self.workers.iter().map(|w| w.lcore).collect();
        lcores.push(self.eal.main_lcore);
        lcores.sort_unstable();
        let lcores: Vec<String> = lcores.iter().map(u32::to_string).collect();

        let mut args = vec![
            program.to_owned(),
            "-l".to_owned(),
            lcores.join(","),
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
    ("--lcores", "eal.main_lcore and [[worker]] lcore"),
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
        assert_eq!(
            config.eal_args("dataplane", &strings(&["--log-level", "lib.eal:debug"])),
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
