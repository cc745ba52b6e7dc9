"""Link-layer constants: the link types apispy reads and the ethertypes it follows."""

LINKTYPE_NULL = 0  # BSD loopback: 4-byte address family in the capturing host's byte order
LINKTYPE_ETHERNET = 1
LINKTYPE_RAW_DLT = 12  # DLT_RAW as some systems number it in files
LINKTYPE_RAW_DLT_OPENBSD = 14
LINKTYPE_RAW = 101
LINKTYPE_LOOP = 108  # OpenBSD loopback: address family in network byte order
LINKTYPE_LINUX_SLL = 113
LINKTYPE_IPV4 = 228
LINKTYPE_IPV6 = 229
LINKTYPE_LINUX_SLL2 = 276

ETHERNET_HEADER_LEN = 14
ETHERTYPE_OFFSET = 12
SLL_HEADER_LEN = 16
SLL_PROTOCOL_OFFSET = 14
SLL2_HEADER_LEN = 20
SLL2_PROTOCOL_OFFSET = 0
NULL_HEADER_LEN = 4
VLAN_TAG_LEN = 4

ETHERTYPE_IPV4 = 0x0800
ETHERTYPE_IPV6 = 0x86DD
ETHERTYPE_VLAN = 0x8100
ETHERTYPE_QINQ = 0x88A8
ETHERTYPE_QINQ_OLD = 0x9100

# BSD address families for IP: AF_INET is 2 everywhere; AF_INET6 is 24 (NetBSD, OpenBSD), 28 (FreeBSD),
# 30 (macOS); Linux's 10 appears in some captures too.
AF_INET = 2
AF_INET6_VALUES = (10, 24, 28, 30)
