package dev.mobilize.bench.core;

import java.io.File;
import java.util.List;

/**
 * The interpreter as the measuring core sees it. The app implements it with LiteRT's
 * Interpreter and delegates; tests implement it with a scripted fake on the JDK.
 *
 * <p>Each method that can fail throws BenchFailure with the status the result should carry
 * (model_load_failed, delegate_failed, inference_failed, out_of_memory).
 */
public interface BenchInterpreter {
  /** Reads and checks the model file; nothing is executed yet. */
  void load(File model, int threads) throws BenchFailure;

  /**
   * Builds the runnable interpreter with the requested delegate (LiteRT applies delegates while
   * the interpreter is created) and allocates its tensors. CPU means XNNPACK with `threads`.
   */
  DelegateReport applyDelegate(Delegate delegate, GpuPrecision precision) throws BenchFailure;

  List<TensorSpec> inputs();

  List<TensorSpec> outputs();

  /** Fills every input with values of its dtype, reproducibly from `seed`. */
  void fillInputs(long seed) throws BenchFailure;

  /** Sets input `index` from an array of that input's dtype and element count. */
  void setInput(int index, NpyArray data) throws BenchFailure;

  /** Output `index` after the last run. */
  NpyArray output(int index) throws BenchFailure;

  void run() throws BenchFailure;

  void close();
}
