"""vdp's control plane: ports, pipeline programming, daemon, CLI."""
