//! The `collecte run` configuration of a [`Stacks`] site.
use super::{Stacks, plan::*};

impl Stacks {
    /// The daemon's configuration: the uplink, one access interface and the
    /// members (with their MACs when [`Options::member_macs`]).
    pub fn config(&self) -> String {
        let mut s = String::new();
        s += "[datapath]\n";
        s += &format!("pin_dir = \"{}/collecte\"\n", self.bpffs.path.display());
        s += "max_members = 64\nroute_groups = 64\n";
        // Beside the daemon's files (removed with them): the daemon records
        // there the VLAN offloads it turns off.
        s += &format!(
            "state = \"{}\"\n\n",
            std::env::temp_dir()
                .join(self.router.name())
                .join("state.json")
                .display()
        );
        if let Some(interval) = self.opts.ra_interval {
            s += &format!("[edge]\nra_interval = {interval}\n\n");
        }
        s += &format!(
            "[metrics]\nlisten = \"127.0.0.1:{}\"\n\n[log]\nlevel = \"info\"\n\n",
            self.opts.metrics_port
        );
        s += "[[uplink]]\ninterface = \"up0\"\ngateway4 = \"192.0.2.1\"\ngateway6 = \"2001:db8::1\"\n\n";
        s += &format!("[[access]]\ninterface = \"{ACCESS}\"\n\n");
        for m in &self.members {
            let spec = &m.spec;
            s += &format!(
                "[[member]]\nid = \"{}\"\ninterface = \"{ACCESS}\"\n",
                spec.id
            );
            if self.opts.member_macs {
                s += &format!("mac = \"{}\"\n", spec.mac);
            }
            if spec.s_vlan != 0 {
                s += &format!("s_vlan = {}\n", spec.s_vlan);
            }
            if spec.c_vlan != 0 {
                s += &format!("c_vlan = {}\n", spec.c_vlan);
            }
            let p: Vec<String> = spec.prefixes.iter().map(|p| format!("\"{p}\"")).collect();
            s += &format!("prefixes = [{}]\n\n", p.join(", "));
        }
        s
    }
}
