package dev.mobilize.bench.core;

import java.io.File;
import java.util.HashMap;
import java.util.Map;

/**
 * For tests/android_app/test_java_core.py: runs the core with the fake interpreter on the
 * durations given (microseconds, integers) and writes the result JSON, so Python can check it
 * against the schema and device_bench.stats.
 *
 * <p>Usage: CrossCheckMain FILES_DIR MODEL_FILE RUN_ID WARMUPS DURATION_US...
 */
public final class CrossCheckMain {
  private CrossCheckMain() {}

  public static void main(String[] args) throws Exception {
    File filesDir = new File(args[0]);
    int warmups = Integer.parseInt(args[3]);
    long[] nanos = new long[args.length - 4];
    for (int i = 4; i < args.length; i++) {
      nanos[i - 4] = Long.parseLong(args[i]) * 1000L;
    }
    FakeTicker ticker = new FakeTicker();
    FakeInterpreter interpreter = new FakeInterpreter(ticker, nanos);
    Map<String, Object> extras = new HashMap<>();
    extras.put(BenchContract.EXTRA_RUN_ID, args[2]);
    extras.put(BenchContract.EXTRA_MODEL_PATH, args[1]);
    extras.put(BenchContract.EXTRA_DELEGATE, "gpu");
    extras.put(BenchContract.EXTRA_THREADS, 4);
    extras.put(BenchContract.EXTRA_WARMUP_RUNS, warmups);
    extras.put(BenchContract.EXTRA_NUM_RUNS, nanos.length - 1 - warmups);
    extras.put(BenchContract.EXTRA_GPU_PRECISION, "fp32");
    BenchmarkRunner.Outcome outcome =
        new BenchmarkRunner(interpreter, TestPlatform.create(ticker)).run(extras);
    File written = BenchmarkRunner.writeResult(filesDir, outcome);
    System.out.println(outcome.logLine(written.getPath()));
  }
}
