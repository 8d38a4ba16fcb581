/**
 * Notices a source raises besides its records: loss (never silent), resyncs,
 * and warnings a user should act on. They go to the subscriber's `notices`
 * observer and to the `flowgrab:notice` diagnostics channel.
 */
import { channel } from 'node:diagnostics_channel';

/** A source's notice: loss (with a count), a resync, or a warning. */
export interface SourceNotice {
  kind: 'loss' | 'resync' | 'warning';
  source: string;
  /** Records lost (loss), or entries re-emitted (resync). */
  count?: number;
  /** Where the loss happened: the kernel socket or a slow reader. */
  where?: 'kernel' | 'reader' | 'decode';
  message: string;
  netns?: string;
  ts: number;
}

/** Receives source notices (loss, resync, warnings). */
export interface NoticeObserver {
  /** Called with each notice. */
  next(n: SourceNotice): void;
}

const noticeChannel = channel('flowgrab:notice');

export function publishNotice(n: SourceNotice, to?: NoticeObserver): void {
  if (noticeChannel.hasSubscribers) noticeChannel.publish(n);
  try {
    to?.next(n);
  } catch {
    // A failing observer must not break the source.
  }
}
