/**
 * Keeps every CPU of this machine out of its idle state while a timing-sensitive scenario runs: one
 * busy loop per CPU under SCHED_IDLE, the lowest scheduling class, so any other task takes the CPU from
 * it at once.
 *
 * Why: in a virtual machine an idle vCPU halts, and the host wakes it up for its next timer later than
 * it would preempt a running one. Every namespace of a scenario shares this machine's CPUs, so when the
 * scenario's LAN is silent the whole machine is idler and the kernel shaper's hrtimer on the last mile
 * fires late more often: measured, 52 of 79 late packets (gap > 1.5 ms) fell in the silence segments
 * and the observer's classifier reached 0.41 against a chance of 0.33. With the CPUs kept awake: 11 late
 * packets spread over the classes, classifier 0.37. A box built for constant-rate TFC would keep its CPUs
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
