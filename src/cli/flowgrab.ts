#!/usr/bin/env node
/** The `flowgrab` command. */
import { Command } from 'commander';
import { VERSION } from '../version.js';
import { errorStyle } from './output.js';
import { reportError } from './run.js';

/**
 * Each subcommand's module, in the order help lists them. Only the one named
 * on the command line is loaded (a dump need not load the graph language,
 * export, the lab …); help, a typo or no subcommand loads them all.
 */
const COMMANDS: [name: string, load: () => Promise<Command>][] = [
  ['conntrack', async () => (await import('./conntrack.js')).conntrackCommand()],
  ['dns', async () => (await import('./dns.js')).dnsCommand()],
  ['arp', async () => (await import('./arp.js')).arpCommand()],
  ['nfqueue', async () => (await import('./nfqueue.js')).nfqueueCommand()],
  ['watch', async () => (await import('./watch.js')).watchCommand()],
  ['record', async () => (await import('./watch.js')).recordCommand()],
  ['graph', async () => (await import('./watch.js')).graphCommand()],
  ['export', async () => (await import('./export.js')).exportCommand()],
  ['policy', async () => (await import('./policy.js')).policyCommand()],
  ['status', async () => (await import('./watch.js')).statusCommand()],
  ['lab', async () => (await import('./lab.js')).labCommand()],
];

/**
 * The subcommands to load: the one the first word after the global options names, none when the version is
 * asked for before any word, every one otherwise (help, a typo, no subcommand).
 */
function wanted(argv: readonly string[]): typeof COMMANDS {
  for (let i = 2; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--daemon') i++;
    else if (a === '-V' || a === '--version') return [];
    else if (!a.startsWith('-')) {
      const one = COMMANDS.filter(([n]) => n === a);
      return one.length > 0 ? one : COMMANDS;
    }
  }
  return COMMANDS;
}

const program = new Command('flowgrab')
  .description('the kernel’s view of network traffic (conntrack, DNS, neighbours, queued packets) as typed records')
  .version(VERSION)
  .option('--daemon <path>', 'run through flowgrabd at this socket (or set FLOWGRAB_DAEMON); default: in-process')
  .showHelpAfterError('(run with --help for usage)');

try {
  const subs = await Promise.all(wanted(process.argv).map(([, load]) => load()));
  for (const c of subs) program.addCommand(c);
  errorStyle(program, 'flowgrab');
  await program.parseAsync(process.argv);
} catch (err) {
  reportError(err);
  process.exitCode = 1;
}
