package dev.mobilize.bench.core;

import java.io.File;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Deque;
import java.util.List;

/**
 * A scripted interpreter for the JDK tests: each run advances the fake clock by the next
 * scripted duration, so the timings the core records are known exactly. Its "model" doubles
 * every float32 input value.
 */
class FakeInterpreter implements BenchInterpreter {
  final FakeTicker ticker;
  final Deque<Long> runNanos = new ArrayDeque<>();
  long loadNanos = 1_500_000L;
  long delegateNanos = 500_000L;
  BenchFailure loadFailure;
  BenchFailure delegateFailure;
  /** Fail the run with this number (1 = first inference) with that failure or error. */
  int failOnRun = -1;
  BenchFailure runFailure;
  Error runError;
  DelegateReport report =
      new DelegateReport(true, "xnnpack", 3, 3, 1, new ArrayList<String>(), null);
  TensorSpec input = new TensorSpec("input", new int[] {1, 2, 2, 1}, "float32");
  TensorSpec outputSpec = new TensorSpec("output", new int[] {1, 2, 2, 1}, "float32");

  int runs;
  int loadedThreads;
  boolean closed;
  Delegate appliedDelegate;
  GpuPrecision appliedPrecision;
  long filledSeed = -1;
  private float[] current = new float[4];

  FakeInterpreter(FakeTicker ticker, long... durationsNanos) {
    this.ticker = ticker;
    for (long nanos : durationsNanos) {
      runNanos.add(nanos);
    }
  }

  @Override
  public void load(File model, int threads) throws BenchFailure {
    ticker.advance(loadNanos);
    loadedThreads = threads;
    if (loadFailure != null) {
      throw loadFailure;
    }
  }

  @Override
  public DelegateReport applyDelegate(Delegate delegate, GpuPrecision precision)
      throws BenchFailure {
    ticker.advance(delegateNanos);
    appliedDelegate = delegate;
    appliedPrecision = precision;
    if (delegateFailure != null) {
      throw delegateFailure;
    }
    return report;
  }

  @Override
  public List<TensorSpec> inputs() {
    return Arrays.asList(input);
  }

  @Override
  public List<TensorSpec> outputs() {
    return Arrays.asList(outputSpec);
  }

  @Override
  public void fillInputs(long seed) {
    filledSeed = seed;
  }

  @Override
  public void setInput(int index, NpyArray data) {
    current = data.floats();
  }

  @Override
  public NpyArray output(int index) {
    float[] doubled = new float[current.length];
    for (int i = 0; i < doubled.length; i++) {
      doubled[i] = current[i] * 2f;
    }
    return NpyArray.ofFloats(outputSpec.shape, doubled);
  }

  @Override
  public void run() throws BenchFailure {
    runs++;
    if (runs == failOnRun) {
      if (runError != null) {
        throw runError;
      }
      throw runFailure;
    }
    Long nanos = runNanos.poll();
    ticker.advance(nanos == null ? 1_000_000L : nanos);
  }

  @Override
  public void close() {
    closed = true;
  }
}
