"""The `l2` controller app: a VLAN-aware learning switch in a three-table
OpenFlow 1.3 pipeline, with flooding that respects spanning tree.

logic.py  I/O-free per-datapath switch (L2Switch), returns os-ken messages
config.py the [l2] section of the controller config file
app.py    the os-ken adapter (L2App); the STP app drives it through
          L2App.set_port_forwarding / flush / set_ageing
"""
