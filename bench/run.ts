/**
 * The benchmark suite: `npm run bench -- [--json] [--quick] [--only SUBSTRING]`. Every figure is
 * measured beside its baseline in the same run (DESIGN.md §10); see each module for what it compares.
 */
import { anonFilterBench, anonOpenBench, anonPrefilterBench, anonSealBench } from './anon-filter.js';
import { captureReadBench } from './capture-read.js';
import { decodeBench } from './decode.js';
import { espDecapBench, espEncapBench, espVsScapyBench } from './esp.js';
import { espCliBench } from './esp-cli.js';
import { heapBench } from './heap.js';
import { iptfsDecapBench, iptfsEncapBench } from './iptfs.js';
import { iptfsLiveBench } from './iptfs-live.js';
import { runBenches } from './lib/bench-context.js';
import { pcapThroughputBench } from './pcap-throughput.js';

export const benches = [
  decodeBench,
  captureReadBench,
  pcapThroughputBench,
  heapBench,
  espEncapBench,
  espDecapBench,
  espVsScapyBench,
  espCliBench,
  iptfsEncapBench,
  iptfsDecapBench,
  iptfsLiveBench,
  anonFilterBench,
  anonSealBench,
  anonOpenBench,
  anonPrefilterBench,
];

process.exitCode = await runBenches(benches, process.argv.slice(2)).catch((e: unknown) => {
  process.stderr.write(`${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  return 1;
});
