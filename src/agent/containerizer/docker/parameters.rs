//! Marathon's docker parameters (and `privileged`) onto the engine's create
//! body: each [`DockerOption`] (model/docker_option.rs, where the list of
//! what is honoured and why lives) sets the field `docker run` would set.
//! Applied after meso's own settings, so a parameter adds to them (labels,
//! env, mounts) or overrides them (memory-swap), as a flag after meso's
//! would on a `docker run` command line.

use bollard::models::{ContainerCreateBody, DeviceMapping, HostConfig, ResourcesUlimits};

use crate::model::{DockerOption, DockerSpec};

/// Sets what `spec`'s parameters ask on `body`; the first one that does not
/// parse is named in the error (the scheduler refuses those at POST already;
/// a task from the operator API can still carry one).
pub(super) fn apply(spec: &DockerSpec, body: &mut ContainerCreateBody) -> Result<(), String> {
    let host = body.host_config.get_or_insert_with(HostConfig::default);
    if spec.privileged {
        host.privileged = Some(true);
    }
    for (i, parameter) in spec.parameters.iter().enumerate() {
        let option = parameter
            .parse()
            .map_err(|e| format!("container.docker.parameters[{i}]: {e}"))?;
        let push = |list: &mut Option<Vec<String>>, item: String| {
            list.get_or_insert_with(Vec::new).push(item)
        };
        match option {
            DockerOption::User(user) => body.user = Some(user),
            DockerOption::Label(k, v) => {
                body.labels
                    .get_or_insert_with(Default::default)
                    .insert(k, v);
            }
            DockerOption::Env(k, v) => {
                // The last of a name wins, as docker's own merge does.
                let env = body.env.get_or_insert_with(Vec::new);
                env.retain(|e| e.split_once('=').map_or(e.as_str(), |(n, _)| n) != k);
                env.push(format!("{k}={v}"));
            }
            DockerOption::Hostname(name) => body.hostname = Some(name),
            DockerOption::AddHost(entry) => push(&mut host.extra_hosts, entry),
            DockerOption::CapAdd(cap) => push(&mut host.cap_add, cap),
            DockerOption::CapDrop(cap) => push(&mut host.cap_drop, cap),
            DockerOption::Dns(server) => push(&mut host.dns, server),
            DockerOption::DnsSearch(domain) => push(&mut host.dns_search, domain),
            DockerOption::DnsOption(option) => push(&mut host.dns_options, option),
            DockerOption::MemorySwap(bytes) => host.memory_swap = Some(bytes),
            DockerOption::ShmSize(bytes) => host.shm_size = Some(bytes),
            DockerOption::Ulimit(name, soft, hard) => host
                .ulimits
                .get_or_insert_with(Vec::new)
                .push(ResourcesUlimits {
                    name: Some(name),
                    soft: Some(soft),
                    hard: Some(hard),
                }),
            DockerOption::Init(on) => host.init = Some(on),
            DockerOption::ReadOnly(on) => host.readonly_rootfs = Some(on),
            DockerOption::SecurityOpt(option) => push(&mut host.security_opt, option),
            DockerOption::Sysctl(k, v) => {
                host.sysctls
                    .get_or_insert_with(Default::default)
                    .insert(k, v);
            }
            DockerOption::Tmpfs(path, options) => {
                host.tmpfs
                    .get_or_insert_with(Default::default)
                    .insert(path, options);
            }
            DockerOption::OomScoreAdj(score) => host.oom_score_adj = Some(score),
            DockerOption::PidsLimit(limit) => host.pids_limit = Some(limit),
            DockerOption::Device(device) => {
                let mut parts = device.splitn(3, ':');
                let on_host = parts.next().unwrap_or_default().to_string();
                let in_container = parts.next().map_or_else(|| on_host.clone(), String::from);
                let permissions = parts.next().unwrap_or("rwm").to_string();
                host.devices
                    .get_or_insert_with(Vec::new)
                    .push(DeviceMapping {
                        path_on_host: Some(on_host),
                        path_in_container: Some(in_container),
                        cgroup_permissions: Some(permissions),
                    });
            }
            DockerOption::Volume(bind) => push(&mut host.binds, bind),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::DockerParameter;

    fn spec(parameters: &[(&str, &str)]) -> DockerSpec {
        DockerSpec {
            image: "i".into(),
            parameters: parameters
                .iter()
                .map(|(k, v)| DockerParameter {
                    key: k.to_string(),
                    value: v.to_string(),
                })
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn parameters_add_to_and_override_what_meso_set() {
        let mut body = ContainerCreateBody {
            env: Some(vec!["A=meso".into(), "B=kept".into()]),
            host_config: Some(HostConfig {
                memory_swap: Some(64 << 20),
                binds: Some(vec!["/sandbox:/mnt/mesos/sandbox:rw".into()]),
                ..Default::default()
            }),
            ..Default::default()
        };
        let mut s = spec(&[
            ("env", "A=mine"),
            ("memory-swap", "-1"),
            ("volume", "/data:/data:ro"),
            ("cap-add", "NET_ADMIN"),
            ("ulimit", "nofile=100:200"),
            ("device", "/dev/fuse"),
        ]);
        s.privileged = true;
        apply(&s, &mut body).expect("all honoured");
        assert_eq!(body.env, Some(vec!["B=kept".into(), "A=mine".into()]));
        let host = body.host_config.expect("host config");
        assert_eq!(host.memory_swap, Some(-1));
        assert_eq!(host.privileged, Some(true));
        assert_eq!(host.binds.expect("binds").len(), 2);
        assert_eq!(host.cap_add, Some(vec!["NET_ADMIN".into()]));
        let ulimit = &host.ulimits.expect("ulimits")[0];
        assert_eq!((ulimit.soft, ulimit.hard), (Some(100), Some(200)));
        let device = &host.devices.expect("devices")[0];
        assert_eq!(device.path_in_container.as_deref(), Some("/dev/fuse"));
        assert_eq!(device.cgroup_permissions.as_deref(), Some("rwm"));
    }

    #[test]
    fn an_unknown_parameter_is_named_with_its_index() {
        let mut body = ContainerCreateBody::default();
        let e = apply(&spec(&[("user", "1"), ("log-driver", "syslog")]), &mut body).unwrap_err();
        assert!(
            e.starts_with("container.docker.parameters[1]: 'log-driver'"),
            "{e}"
        );
    }
}
