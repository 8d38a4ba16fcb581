/**
 * What survives a restart (SQLite in WAL mode): names, the three lists,
 * blocked node pairs, node identities and the id counter. Writes for lists
 * and blocks happen inside the RPC that makes them, so a kill -9 right after
 * the reply loses nothing.
 */
import { chmodSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { trustedDir } from 'flowgrab';
import type { ListName } from '../domain/lists.js';
import type { SpinNode } from '../domain/model.js';

export interface StoredNode {
  id: number;
  mac?: string;
  name?: string;
  ips: string[];
  domains: string[];
  lastseen: number;
  isBlocked: boolean;
  isExcepted: boolean;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS names (key TEXT PRIMARY KEY, name TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS lists (list TEXT NOT NULL, entry TEXT NOT NULL, PRIMARY KEY (list, entry));
CREATE TABLE IF NOT EXISTS pairs (node1 INTEGER NOT NULL, node2 INTEGER NOT NULL, PRIMARY KEY (node1, node2));
CREATE TABLE IF NOT EXISTS name_addrs (list TEXT NOT NULL, name TEXT NOT NULL, ip TEXT NOT NULL,
  expires INTEGER NOT NULL, PRIMARY KEY (list, name, ip));
CREATE TABLE IF NOT EXISTS nodes (id INTEGER PRIMARY KEY, mac TEXT, name TEXT, ips TEXT NOT NULL,
  domains TEXT NOT NULL, lastseen INTEGER NOT NULL, blocked INTEGER NOT NULL, excepted INTEGER NOT NULL);
`;

type Row = {
  id: number;
  mac: string | null;
  name: string | null;
  ips: string;
  domains: string;
  lastseen: number;
  blocked: number;
  excepted: number;
};

export class SpinStore {
  private readonly db: Database.Database;
  private readonly putNodeStmt: Database.Statement;
  private readonly delNodeStmt: Database.Statement;

  constructor(dir: string) {
    // Devices, their addresses and every domain they looked up: for the app's user only (the directory 0700, the
    // database and its WAL files 0600 from the umask while SQLite makes them). The directory, and every one above
    // it, must be ours and writable by nobody else before anything is made or changed there: another user's
    // directory (or a symlink in /tmp) would take the login files and the database, or a chmod through a link.
    trustedDir(dir, 'SPIN state directory');
    chmodSync(dir, 0o700);
    const umask = process.umask(0o077);
    try {
      this.db = new Database(join(dir, 'spin.db'));
      this.db.pragma('journal_mode = WAL');
    } finally {
      process.umask(umask);
    }
    this.db.pragma('synchronous = NORMAL');
    this.db.exec(SCHEMA);
    this.putNodeStmt = this.db.prepare(
      'INSERT OR REPLACE INTO nodes (id, mac, name, ips, domains, lastseen, blocked, excepted) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
    );
    this.delNodeStmt = this.db.prepare('DELETE FROM nodes WHERE id = ?');
  }

  lastId(): number {
    const r = this.db.prepare("SELECT value FROM meta WHERE key = 'last_id'").get() as { value: string } | undefined;
    return r ? Number(r.value) : 0;
  }

  setLastId(id: number): void {
    this.db.prepare("INSERT OR REPLACE INTO meta (key, value) VALUES ('last_id', ?)").run(String(id));
  }

  names(): Map<string, string> {
    const rows = this.db.prepare('SELECT key, name FROM names').all() as { key: string; name: string }[];
    return new Map(rows.map((r) => [r.key, r.name]));
  }

  setName(keys: string[], name: string): void {
    const st = this.db.prepare('INSERT OR REPLACE INTO names (key, name) VALUES (?, ?)');
    this.db.transaction(() => {
      for (const k of keys) st.run(k, name);
    })();
  }

  lists(): { list: ListName; entry: string }[] {
    return this.db.prepare('SELECT list, entry FROM lists ORDER BY rowid').all() as { list: ListName; entry: string }[];
  }

  /** Replaces one list's stored entries. */
  saveList(list: ListName, entries: string[]): void {
    const ins = this.db.prepare('INSERT OR IGNORE INTO lists (list, entry) VALUES (?, ?)');
    this.db.transaction(() => {
      this.db.prepare('DELETE FROM lists WHERE list = ?').run(list);
      for (const e of entries) ins.run(list, e);
    })();
  }

  pairs(): [number, number][] {
    const rows = this.db.prepare('SELECT node1, node2 FROM pairs').all() as { node1: number; node2: number }[];
    return rows.map((r) => [r.node1, r.node2]);
  }

  savePairs(pairs: [number, number][]): void {
    const ins = this.db.prepare('INSERT OR IGNORE INTO pairs (node1, node2) VALUES (?, ?)');
    this.db.transaction(() => {
      this.db.prepare('DELETE FROM pairs').run();
      for (const [a, b] of pairs) ins.run(a, b);
    })();
  }

  /** Addresses of listed DNS names (name, address, expiry in ms), so a restart enforces them before the next lookup. */
  nameAddrs(list: 'block' | 'allow', now: number): [string, string, number][] {
    const rows = this.db
      .prepare('SELECT name, ip, expires FROM name_addrs WHERE list = ? AND expires > ?')
      .all(list, now) as { name: string; ip: string; expires: number }[];
    return rows.map((r) => [r.name, r.ip, r.expires]);
  }

  putNameAddr(list: 'block' | 'allow', name: string, ip: string, expires: number): void {
    this.db
      .prepare('INSERT OR REPLACE INTO name_addrs (list, name, ip, expires) VALUES (?, ?, ?, ?)')
      .run(list, name, ip, expires);
  }

  saveNameAddrs(list: 'block' | 'allow', rows: [string, string, number][]): void {
    const ins = this.db.prepare('INSERT OR REPLACE INTO name_addrs (list, name, ip, expires) VALUES (?, ?, ?, ?)');
    this.db.transaction(() => {
      this.db.prepare('DELETE FROM name_addrs WHERE list = ?').run(list);
      for (const [name, ip, exp] of rows) ins.run(list, name, ip, exp);
    })();
  }

  nodes(): StoredNode[] {
    return (this.db.prepare('SELECT * FROM nodes ORDER BY id').all() as Row[]).map((r) => ({
      id: r.id,
      mac: r.mac ?? undefined,
      name: r.name ?? undefined,
      ips: JSON.parse(r.ips) as string[],
      domains: JSON.parse(r.domains) as string[],
      lastseen: r.lastseen,
      isBlocked: r.blocked === 1,
      isExcepted: r.excepted === 1,
    }));
  }

  /** Writes changed node identities and removes deleted ones, in one transaction. */
  syncNodes(put: StoredNode[], deleted: number[], lastId: number): void {
    this.db.transaction(() => {
      for (const n of put) {
        this.putNodeStmt.run(
          n.id,
          n.mac ?? null,
          n.name ?? null,
          JSON.stringify(n.ips),
          JSON.stringify(n.domains),
          n.lastseen,
          n.isBlocked ? 1 : 0,
          n.isExcepted ? 1 : 0,
        );
      }
      for (const id of deleted) this.delNodeStmt.run(id);
      this.setLastId(lastId);
    })();
  }

  close(): void {
    this.db.close();
  }
}

/** A node's identity as the store keeps it. */
export function storedNode(n: SpinNode): StoredNode {
  return {
    id: n.id,
    mac: n.mac,
    name: n.name,
    ips: [...n.ips],
    domains: [...n.domains],
    lastseen: n.lastseen,
    isBlocked: n.isBlocked,
    isExcepted: n.isExcepted,
  };
}
