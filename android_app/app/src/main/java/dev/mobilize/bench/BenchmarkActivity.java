package dev.mobilize.bench;

import android.app.Activity;
import android.os.Bundle;
import android.util.Log;
import dev.mobilize.bench.core.BenchContract;
import dev.mobilize.bench.core.BenchmarkRunner;
import dev.mobilize.bench.core.Status;
import java.io.IOException;
import java.util.HashMap;
import java.util.Map;

/**
 * The headless entry point. Copies the intent extras into a Map, runs the measuring core on a
 * background thread (a long run must not block the main thread), writes the result JSON
 * atomically under files/results/RUN_ID.json, logs one line, and finishes.
 */
public final class BenchmarkActivity extends Activity {
  @Override
  protected void onCreate(Bundle savedInstanceState) {
    super.onCreate(savedInstanceState);
    final Map<String, Object> extras = extrasOf(getIntent().getExtras());
    Thread worker =
        new Thread(
            new Runnable() {
              @Override
              public void run() {
                benchmark(extras);
                runOnUiThread(
                    new Runnable() {
                      @Override
                      public void run() {
                        finish();
                      }
                    });
              }
            },
            "mobilize-bench");
    worker.start();
  }

  private void benchmark(Map<String, Object> extras) {
    AndroidPlatform platform = new AndroidPlatform(this);
    BenchmarkRunner.Outcome outcome =
        new BenchmarkRunner(new LiteRtInterpreter(), platform.create()).run(extras);
    String path = null;
    try {
      if (outcome.runId != null) {
        path = BenchmarkRunner.writeResult(getFilesDir(), outcome).getAbsolutePath();
      }
    } catch (IOException e) {
      Log.e(BenchContract.LOG_TAG, "run_id=" + outcome.runId + " cannot write result: " + e);
    }
    String line = outcome.logLine(path);
    if (outcome.status == Status.OK) {
      Log.i(BenchContract.LOG_TAG, line);
    } else {
      Log.e(BenchContract.LOG_TAG, line);
    }
  }

  /** `am start --es/--ei` extras as a plain Map: strings stay strings, ints stay Integers. */
  @SuppressWarnings("deprecation") // Bundle.get(String): the typed getters need the type first
  static Map<String, Object> extrasOf(Bundle bundle) {
    Map<String, Object> extras = new HashMap<>();
    if (bundle == null) {
      return extras;
    }
    for (String key : bundle.keySet()) {
      extras.put(key, bundle.get(key));
    }
    return extras;
  }
}
