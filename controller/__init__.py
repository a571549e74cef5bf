"""os-ken controller apps for vdp (they talk to datapaths only over OpenFlow)."""
