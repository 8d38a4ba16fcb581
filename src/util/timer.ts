/**
 * The longest delay a Node timer takes (2^31 - 1 ms, about 24.8 days). A longer one is not refused: Node
 * warns (TimeoutOverflowWarning) and fires it after 1 ms, so an interval of "1000h" ran every millisecond.
 * User-given durations are bounded by it; computed waits that may exceed it are cut to it (firing early).
 */
export const MAX_TIMER_MS = 2 ** 31 - 1;
