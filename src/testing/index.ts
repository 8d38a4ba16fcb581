/** flowgrab/testing: the fake kernel seam and the network-namespace lab. */
export { ackReply, dumpReply, FakeKernel, FakeSocket, type RequestHandler } from './fake-netlink.js';
export { fakeFeed, fakeSubscriptions } from './fake-source.js';
export { type DnsFloodOptions, type FloodOptions, floodDns, floodUdp, floodUdpSync } from './flood.js';
export * from './lab/index.js';
