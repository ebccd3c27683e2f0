/**
 * Format notes copied into every expected.json. They describe what real captures
 * of this lab look like (checked on Linux 6.18, iproute2 ss, net-tools 2.10).
 */
export const FORMAT_NOTES: string[] = [
  'All formats were captured from the server namespace within ~200 ms and agree exactly with the counts above (scripts/lab/verify-fixtures.sh); the kernel added no sockets of its own.',
  'IPv4 peers of the dual-stack [::]:80 listener (SYN_RECV, ESTABLISHED and TIME_WAIT alike) live in /proc/net/tcp6 as ::ffff:a.b.c.d (0000000000000000FFFF0000<a.b.c.d little-endian>), ss prints them as [::ffff:a.b.c.d]:port, and netstat prints them under Proto tcp6 but as plain IPv4 (e.g. 192.0.2.1:80  198.51.100.66:31493).',
  'Listeners: ss shows the dual-stack one as *:80 / *:* and the v6only one as [::]:443; netstat shows both as :::80 / :::443; LISTEN rows have peer 0.0.0.0:* / :::*.',
  'netstat IPv6 endpoints are addr:port without brackets (2001:db8:1::8:14411): split at the last colon. No address is truncated in netstat -an/-ant (the longest endpoint fits the 23-char column), so netstat-antW.txt is identical to netstat-ant.txt here; netstat-antu.txt equals netstat-ant.txt plus the udp/udp6 rows; netstat-an.txt equals netstat-antu.txt plus an empty "Active UNIX domain sockets" section.',
  'UDP (proc-udp*, ss-tanu, netstat-antu, netstat-an): 0.0.0.0:53 and [::]:53 unconnected (ss UNCONN, netstat empty state, /proc st 07) plus one connected socket per family to the attacker port 53 (ss ESTAB, netstat ESTABLISHED, /proc st 01). Ignore these when counting TCP states.',
  'In /proc, SYN_RECV (st 03) request sockets have uid 0, inode 0 and timer tr=01; TIME_WAIT (st 06) rows have inode 0 and tr=03. Row order differs between formats (kernel hash order).',
];
