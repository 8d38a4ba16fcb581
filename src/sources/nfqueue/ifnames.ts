/**
 * ifindex → interface name for packet records, from `ip -j link` in the
 * source's namespace. Looked up at start and again (at most every 2 s) when
 * an unknown index shows up; a record never waits for it.
 */
import { runTool } from '../firewall/exec.js';

const REFRESH_MS = 2000;

export class IfNames {
  private names = new Map<number, string>();
  private lastLoad = 0;
  private loading?: Promise<void>;

  constructor(private readonly netns?: string) {}

  load(): Promise<void> {
    this.lastLoad = Date.now();
    this.loading ??= runTool(['ip', ...(this.netns ? ['-n', this.netns] : []), '-j', 'link', 'show'], {
      allowFail: true,
    })
      .then((r) => {
        if (r.code !== 0) return;
        const links = JSON.parse(r.stdout) as { ifindex: number; ifname: string }[];
        this.names = new Map(links.map((l) => [l.ifindex, l.ifname]));
      })
      .catch(() => {}) // names are a convenience: without `ip`, records carry indexes only
      .finally(() => {
        this.loading = undefined;
      });
    return this.loading;
  }

  readonly lookup = (ifindex: number): string | undefined => {
    const n = this.names.get(ifindex);
    if (n === undefined && Date.now() - this.lastLoad > REFRESH_MS) void this.load();
    return n;
  };
}
