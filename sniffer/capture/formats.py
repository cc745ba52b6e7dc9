"""File-format constants of pcap and pcapng, named once so the kernels carry no magic numbers."""

PCAP_MAGIC_USEC = 0xA1B2C3D4
PCAP_MAGIC_NSEC = 0xA1B23C4D
PCAP_GLOBAL_HEADER_LEN = 24
PCAP_RECORD_HEADER_LEN = 16

PCAPNG_SHB = 0x0A0D0D0A
PCAPNG_IDB = 0x00000001
PCAPNG_OPB = 0x00000002  # obsolete Packet Block, still written by old tools
PCAPNG_SPB = 0x00000003
PCAPNG_EPB = 0x00000006
PCAPNG_BYTE_ORDER_MAGIC = 0x1A2B3C4D
PCAPNG_OPT_END = 0
PCAPNG_OPT_IF_TSRESOL = 9

# A frame larger than this is a corrupt length field, not a packet (jumbo frames and TSO'd loopback stay below).
MAX_SANE_FRAME = 262_144 * 4
