/**
 * Keeps every CPU of this machine out of its idle state while a timing-sensitive scenario runs: one
 * busy loop per CPU under SCHED_IDLE, the lowest scheduling class, so any other task takes the CPU from
 * it at once.
 *
 * Why: in a virtual machine an idle vCPU halts, and the host wakes it up for its next timer later than
 * it would preempt a running one. Every namespace of a scenario shares this machine's CPUs, so when the
 * scenario's LAN is quiet the whole machine is idler and the kernel shaper's hrtimer on the last mile
 * fires late more often. Measured on the last mile (gaps > 1.5 ms, per silence/voip/web segment): with
 * idle CPUs 52/20/5 in one run (classifier 0.41 against a chance of 0.33, 54 samples) and 28/29/9 in a
 * 450-sample run (max gap 252 ms, rate 1% low); with the CPUs kept awake 5/5/1 and 7/7/4 (max gap
 * 2.8 ms, rate exact to 0.01%). A box built for constant-rate TFC would keep its CPUs
 * out of deep idle states (idle=poll, or /dev/cpu_dma_latency held at 0 where a cpuidle driver exists;
 * this VM has none); this is the lab's stand-in for that.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { availableParallelism } from 'node:os';

export class CpuKeepAwake {
  private readonly loops: ChildProcess[] = [];
  private readonly onExit = (): void => this.stop();

  /** Starts the loops (`chrt --idle 0 sh -c 'while :; do :; done'`, one per CPU). */
  constructor(cpus = availableParallelism()) {
    for (let i = 0; i < cpus; i++) {
      const loop = spawn('chrt', ['--idle', '0', 'sh', '-c', 'while :; do :; done'], { stdio: 'ignore' });
      loop.on('error', () => {}); // chrt missing: the scenario runs, with the idle effect described above
      this.loops.push(loop);
    }
    process.on('exit', this.onExit);
  }

  /** Kills the loops (idempotent; synchronous, so it is safe in an 'exit' handler). */
  stop(): void {
    for (const loop of this.loops.splice(0))
      if (loop.exitCode === null && loop.signalCode === null) loop.kill('SIGKILL');
    process.off('exit', this.onExit);
  }
}
