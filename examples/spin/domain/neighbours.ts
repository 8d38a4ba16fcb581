/** The neighbour table as the core last heard it: which addresses each MAC has now. */
export class Neighbours {
  /** MAC → addresses the neighbour table has for it now. */
  private readonly byMac = new Map<string, Set<string>>();
  /** Address → MAC, for a node made from traffic before its neighbour event was handled. */
  private readonly byIp = new Map<string, string>();

  add(mac: string, ip: string): void {
    const old = this.byIp.get(ip);
    if (old && old !== mac) this.remove(ip);
    this.byIp.set(ip, mac);
    let ips = this.byMac.get(mac);
    if (!ips) this.byMac.set(mac, (ips = new Set()));
    ips.add(ip);
  }

  /** The address left the table (deleted, unusable, or without a MAC). */
  remove(ip: string): void {
    const mac = this.byIp.get(ip);
    if (mac === undefined) return;
    this.byIp.delete(ip);
    const ips = this.byMac.get(mac);
    if (ips?.delete(ip) && ips.size === 0) this.byMac.delete(mac);
  }

  macOf(ip: string): string | undefined {
    return this.byIp.get(ip);
  }

  /** True when the neighbour table lists the MAC now. */
  live(mac: string): boolean {
    return (this.byMac.get(mac)?.size ?? 0) > 0;
  }
}
