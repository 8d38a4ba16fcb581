/**
 * What the source commands (`flowgrab conntrack|dns|arp`) share: their
 * output flags, and their run through flowgrabd with `--daemon`.
 */
import type { Command } from 'commander';
import type { Value } from '../filters/spec.js';
import { positiveInt, seconds } from './args.js';
import type { RunOptions } from './run.js';

/** The output flags of a source command, as commander parses them. */
export interface SourceOutputFlags {
  json?: boolean;
  count?: number;
  duration?: number;
  buffer?: number;
}

/** Adds the flags every source command takes: --netns, --json, --count, --duration and --buffer. */
export function sourceOutputOptions(c: Command): Command {
  return c
    .option('--netns <name>', 'watch this network namespace (ip netns) instead of our own')
    .option('--json', 'print records as NDJSON, one per line')
    .option('--count <n>', 'stop after printing n records', positiveInt('--count'))
    .option('--duration <s>', 'stop after s seconds', seconds)
    .option('--buffer <n>', 'with --daemon: records flowgrabd buffers for us (default 1000)', positiveInt('--buffer'));
}

/**
 * `--daemon`: the source `name` with `params` (undefined ones left out) run
 * by flowgrabd under its policy, its records printed here as the command
 * prints its own. Resolves to the exit code.
 */
export async function runSourceViaDaemon<R>(
  daemon: string,
  name: string,
  params: Record<string, Value | undefined>,
  o: SourceOutputFlags,
  format: (r: R) => string,
  toJson?: (r: R) => string,
): Promise<number> {
  const { runGraph, sourceGraph } = await import('./graph-run.js');
  return runGraph(sourceGraph(name, params), {
    json: Boolean(o.json),
    count: o.count,
    duration: o.duration,
    daemon,
    buffer: o.buffer,
    format: format as (r: Record<string, unknown>) => string,
    ...(toJson ? { toJson: toJson as (r: Record<string, unknown>) => string } : {}),
  });
}

/** How runStream prints in-process, from the output flags. */
export function runOptions(o: SourceOutputFlags): RunOptions {
  return { json: Boolean(o.json), count: o.count, durationS: o.duration };
}
