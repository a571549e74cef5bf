# cdefs.pxi - Cython declarations of the shared C types (ext/vdp_*.h).
# Each area's own functions are declared in that area's .pxi.
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t, int32_t, int64_t

cdef extern from "vdp_key.h" nogil:
    enum: VDP_F_COUNT
    enum: VDP_KEY_WORDS
    enum: VDP_VID_PRESENT
    ctypedef struct vdp_key:
        uint64_t w[19]
        uint64_t present
        uint64_t metadata
        uint64_t tunnel_id
        uint32_t in_port
        uint32_t in_phy_port
        uint8_t eth_dst[6]
        uint16_t eth_type
        uint8_t eth_src[6]
        uint16_t vlan_vid
        uint32_t nw_src
        uint32_t nw_dst
        uint16_t tp_src
        uint16_t tp_dst
        uint32_t ipv6_flabel
        uint8_t vlan_pcp
        uint8_t ip_dscp
        uint8_t ip_ecn
        uint8_t ip_proto
        uint8_t icmp_type
        uint8_t icmp_code
        uint16_t arp_op
        uint32_t mpls_label
        uint32_t pbb_isid
        uint8_t mpls_tc
        uint8_t mpls_bos
        uint16_t ipv6_exthdr
        uint8_t arp_sha[6]
        uint8_t arp_tha[6]
        uint8_t ipv6_src[16]
        uint8_t ipv6_dst[16]
        uint8_t nd_target[16]
    ctypedef struct vdp_field_info:
        const char *name
        uint16_t offset
        uint8_t size
        uint8_t nbits
        uint8_t maskable
        uint8_t settable
        uint8_t is_bytes
    const vdp_field_info vdp_fields[40]

cdef extern from "vdp_types.h" nogil:
    enum: VDP_BURST
    enum: VDP_MAX_PORTS
    enum: VDP_HEADROOM
    enum: VDP_MAX_FRAME
    enum: VDP_NOOFF
    ctypedef struct vdp_pkt:
        uint8_t *data
        uint32_t len
        uint32_t in_port
        uint8_t *buf
        uint32_t bufsize
        uint16_t vlan_off
        uint16_t pbb_off
        uint16_t mpls_off
        uint16_t l3_off
        uint16_t l4_off
        uint16_t nd_sll_off
        uint16_t nd_tll_off
        uint16_t ethtype_off
        uint8_t n_vlan
        uint8_t csum_partial
        uint8_t gso_type
        uint16_t gso_size
        uint16_t csum_start
        uint16_t csum_offset
        uint8_t malformed
        uint8_t rewritten
    ctypedef struct vdp_port_stats:
        uint64_t rx_packets, tx_packets, rx_bytes, tx_bytes
        uint64_t rx_dropped, tx_dropped, rx_errors, tx_errors
        uint64_t rx_malformed
    ctypedef struct vdp_port_ops:
        pass
    ctypedef struct vdp_port:
        uint32_t ofport
        int fd
        int ifindex
        uint32_t mtu
        uint32_t config
        uint8_t link_up
        uint8_t hw_addr[6]
        vdp_port_stats stats
        const vdp_port_ops *ops
        void *impl
    ctypedef struct vdp_op:
        uint8_t type
        uint8_t field
        uint8_t aux
        uint16_t arg16
        uint32_t arg
        void *ptr
    ctypedef struct vdp_prog:
        uint32_t n
        uint32_t flags
        vdp_op ops[1]

cdef extern from "vdp_parse.h" nogil:
    int vdp_parse(vdp_pkt *pkt, vdp_key *key)
    int vdp_reparse(vdp_pkt *pkt, vdp_key *key)
    uint32_t vdp_key_hash(const vdp_key *k, uint32_t basis)

cdef extern from "vdp_dp.h" nogil:
    ctypedef struct vdp_dp:
        pass
    void vdp_dp_process_burst(vdp_dp *dp, vdp_pkt *pkts, int n, uint64_t now_ns)
    vdp_port *vdp_dp_port(vdp_dp *dp, uint32_t ofport)
    void vdp_dp_lock(vdp_dp *dp)
    void vdp_dp_unlock(vdp_dp *dp)
    uint32_t vdp_dp_max_port(vdp_dp *dp)


# Base of every port provider (ports.pxi): the C port it wraps.  Datapath
# (pipeline.pxi) takes these in attach_port().
cdef class Port:
    cdef vdp_port *c
    cdef public object name
