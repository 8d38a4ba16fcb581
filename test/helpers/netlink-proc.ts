/**
 * What a process's netlink sockets joined, as /proc shows it: to wait for
 * a tool such as `conntrack -E` to listen (it prints nothing when it does);
 * and this process's socket fds, to see that a close() closed them.
 */
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';

/** NETLINK_NETFILTER, the protocol column ("Eth") of /proc/net/netlink. */
const NETLINK_NETFILTER = 12;

/**
 * The multicast groups (bit `g - 1` for group `g`) that the netfilter
 * netlink sockets of process `pid` joined, in its own network namespace.
 * Throws when the process is gone.
 */
export function netfilterGroupsOf(pid: number): number {
  const inodes = new Set<string>();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    let link = '';
    try {
      link = readlinkSync(`/proc/${pid}/fd/${fd}`);
    } catch {
      continue; // closed meanwhile
    }
    const m = /^socket:\[(\d+)\]$/.exec(link);
    if (m) inodes.add(m[1]);
  }
  let groups = 0;
  // Columns: sk Eth Pid Groups Rmem Wmem Dump Locks Drops Inode
  for (const line of readFileSync(`/proc/${pid}/net/netlink`, 'utf8').split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (Number(f[1]) === NETLINK_NETFILTER && inodes.has(f[9])) groups |= Number.parseInt(f[3], 16);
  }
  return groups;
}

/** The fds of this process that are sockets (any kind). */
export function socketFds(): string[] {
  return readdirSync('/proc/self/fd').filter((fd) => {
    try {
      return readlinkSync(`/proc/self/fd/${fd}`).startsWith('socket:');
    } catch {
      return false; // closed meanwhile
    }
  });
}
