/** The neighbour table as the core last heard it: which addresses each MAC has now. */
export class Neighbours {
  /** MAC → addresses the neighbour table has for it now. */
  private readonly byMac = new Map<string, Set<string>>();

  add(mac: string, ip: string): void {
    let ips = this.byMac.get(mac);
    if (!ips) this.byMac.set(mac, (ips = new Set()));
    ips.add(ip);
  }

  /** The address left the table (deleted, unusable, or without a MAC). */
  remove(ip: string): void {
    for (const [mac, ips] of this.byMac) {
      if (ips.delete(ip) && ips.size === 0) this.byMac.delete(mac);
    }
  }

  /** True when the neighbour table lists the MAC now. */
  live(mac: string): boolean {
    return (this.byMac.get(mac)?.size ?? 0) > 0;
  }
}
