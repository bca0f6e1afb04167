package dev.mobilize.bench;

import android.os.Process;
import android.util.Log;
import dev.mobilize.bench.core.BenchContract;
import dev.mobilize.bench.core.BenchFailure;
import dev.mobilize.bench.core.BenchInterpreter;
import dev.mobilize.bench.core.Delegate;
import dev.mobilize.bench.core.DelegateLog;
import dev.mobilize.bench.core.DelegateReport;
import dev.mobilize.bench.core.GpuPrecision;
import dev.mobilize.bench.core.NpyArray;
import dev.mobilize.bench.core.Status;
import dev.mobilize.bench.core.TensorSpec;
import java.io.BufferedReader;
import java.io.File;
import java.io.FileInputStream;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.MappedByteBuffer;
import java.nio.channels.FileChannel;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Random;
import org.tensorflow.lite.DataType;
import org.tensorflow.lite.Interpreter;
import org.tensorflow.lite.Tensor;
import org.tensorflow.lite.gpu.CompatibilityList;
import org.tensorflow.lite.gpu.GpuDelegate;
import org.tensorflow.lite.gpu.GpuDelegateFactory;
import org.tensorflow.lite.nnapi.NnApiDelegate;

/**
 * BenchInterpreter on LiteRT's Interpreter API. Delegates are applied while the Interpreter is
 * built, so load() only maps the file and applyDelegate() builds the interpreter. Inputs and
 * outputs live in direct buffers allocated once; every run hands the same buffers to the
 * runtime.
 */
final class LiteRtInterpreter implements BenchInterpreter {
  private static final String XNNPACK_KERNEL = "TfLiteXNNPackDelegate";
  private static final String GPU_KERNEL = "TfLiteGpuDelegate"; // V2 and the older name
  private static final String NNAPI_KERNEL = "TfLiteNnapiDelegate";

  private MappedByteBuffer model;
  private int threads;
  private Interpreter interpreter;
  private GpuDelegate gpuDelegate;
  private NnApiDelegate nnApiDelegate;
  private ByteBuffer[] inputs = new ByteBuffer[0];
  private final Map<Integer, Object> outputs = new HashMap<>();

  @Override
  public void load(File file, int threads) throws BenchFailure {
    this.threads = threads;
    try {
      FileInputStream stream = new FileInputStream(file);
      try {
        FileChannel channel = stream.getChannel();
        model = channel.map(FileChannel.MapMode.READ_ONLY, 0, channel.size());
      } finally {
        stream.close(); // the mapping stays valid after the channel closes
      }
    } catch (IOException e) {
      throw new BenchFailure(Status.MODEL_LOAD_FAILED, "cannot map " + file + ": " + e.getMessage());
    }
  }

  @Override
  public DelegateReport applyDelegate(Delegate delegate, GpuPrecision precision)
      throws BenchFailure {
    Interpreter.Options options = new Interpreter.Options().setNumThreads(threads);
    String note = null;
    Delegate effective = delegate;
    if (delegate == Delegate.GPU) {
      CompatibilityList compatibility = new CompatibilityList();
      if (compatibility.isDelegateSupportedOnThisDevice()) {
        GpuDelegateFactory.Options gpu = compatibility.getBestOptionsForThisDevice();
        gpu.setPrecisionLossAllowed(precision == GpuPrecision.FP16);
        // int8 models run on the GPU dequantized; let the delegate take them.
        gpu.setQuantizedModelsAllowed(true);
        gpuDelegate = new GpuDelegate(gpu);
        options.addDelegate(gpuDelegate).setUseXNNPACK(false);
      } else {
        effective = Delegate.CPU;
        note = "the GPU delegate is not supported on this device; this run used the CPU (XNNPACK)";
      }
    } else if (delegate == Delegate.NNAPI) {
      NnApiDelegate.Options nnapi = new NnApiDelegate.Options();
      nnapi.setAllowFp16(precision == GpuPrecision.FP16);
      nnApiDelegate = new NnApiDelegate(nnapi);
      options.addDelegate(nnApiDelegate).setUseXNNPACK(false);
    }
    if (effective == Delegate.CPU) {
      options.setUseXNNPACK(true);
    }
    String marker = "delegate-start " + System.nanoTime();
    Log.i(BenchContract.LOG_TAG, marker);
    try {
      interpreter = new Interpreter(model, options);
      interpreter.allocateTensors();
    } catch (IllegalArgumentException | IllegalStateException e) {
      String message = String.valueOf(e.getMessage());
      boolean delegateRefused = message.toLowerCase(Locale.ROOT).contains("delegate");
      throw new BenchFailure(
          delegateRefused ? Status.DELEGATE_FAILED : Status.MODEL_LOAD_FAILED, message, e);
    }
    allocateBuffers();
    return report(delegate, effective, ownLogSince(marker), note);
  }

  private static DelegateReport report(
      Delegate requested, Delegate effective, String log, String note) {
    if (effective == Delegate.CPU) {
      DelegateLog xnnpack = DelegateLog.parse(log, XNNPACK_KERNEL);
      boolean took = xnnpack.found && xnnpack.nodesDelegated > 0;
      return new DelegateReport(
          requested == Delegate.CPU,
          took ? "xnnpack" : "builtin",
          xnnpack.found ? xnnpack.nodesDelegated : null,
          xnnpack.found ? xnnpack.nodesTotal : null,
          xnnpack.found ? xnnpack.partitions : null,
          Collections.<String>emptyList(),
          note);
    }
    DelegateLog lines =
        DelegateLog.parse(log, requested == Delegate.GPU ? GPU_KERNEL : NNAPI_KERNEL);
    if (!lines.found) {
      // The runtime built the interpreter with the delegate but its log line was not readable:
      // it was applied, how many nodes it took is unknown.
      return new DelegateReport(
          true,
          requested.wireName,
          null,
          null,
          null,
          lines.unsupportedOps,
          "node counts unknown: the runtime's log line was not found in logcat");
    }
    boolean took = lines.nodesDelegated > 0;
    return new DelegateReport(
        took,
        took ? requested.wireName : "builtin",
        lines.nodesDelegated,
        lines.nodesTotal,
        lines.partitions,
        lines.unsupportedOps,
        took ? null : "the " + requested.wireName + " delegate took no nodes; the model ran on the CPU");
  }

  /** This process's log lines after `marker` (an app may read its own logcat). */
  private static String ownLogSince(String marker) {
    StringBuilder text = new StringBuilder();
    try {
      java.lang.Process logcat =
          new ProcessBuilder(
                  "logcat", "-d", "-v", "threadtime", "--pid=" + Process.myPid(),
                  "tflite:V", BenchContract.LOG_TAG + ":V", "*:S")
              .redirectErrorStream(true)
              .start();
      BufferedReader reader =
          new BufferedReader(new InputStreamReader(logcat.getInputStream(), "UTF-8"));
      try {
        String line;
        while ((line = reader.readLine()) != null) {
          if (line.contains(marker)) {
            text.setLength(0); // keep only what came after our marker
          } else {
            text.append(line).append('\n');
          }
        }
      } finally {
        reader.close();
      }
      logcat.waitFor();
    } catch (IOException e) {
      return "";
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      return "";
    }
    return text.toString();
  }

  private void allocateBuffers() {
    inputs = new ByteBuffer[interpreter.getInputTensorCount()];
    for (int i = 0; i < inputs.length; i++) {
      inputs[i] = direct(interpreter.getInputTensor(i).numBytes());
    }
    outputs.clear();
    for (int i = 0; i < interpreter.getOutputTensorCount(); i++) {
      outputs.put(i, direct(interpreter.getOutputTensor(i).numBytes()));
    }
  }

  private static ByteBuffer direct(int bytes) {
    return ByteBuffer.allocateDirect(bytes).order(ByteOrder.nativeOrder());
  }

  @Override
  public List<TensorSpec> inputs() {
    List<TensorSpec> specs = new ArrayList<>();
    for (int i = 0; i < interpreter.getInputTensorCount(); i++) {
      specs.add(spec(interpreter.getInputTensor(i)));
    }
    return specs;
  }

  @Override
  public List<TensorSpec> outputs() {
    List<TensorSpec> specs = new ArrayList<>();
    for (int i = 0; i < interpreter.getOutputTensorCount(); i++) {
      specs.add(spec(interpreter.getOutputTensor(i)));
    }
    return specs;
  }

  private static TensorSpec spec(Tensor tensor) {
    return new TensorSpec(tensor.name(), tensor.shape(), dtypeName(tensor.dataType()));
  }

  /** numpy's spelling of a LiteRT DataType: FLOAT32 -> float32, UINT8 -> uint8, ... */
  static String dtypeName(DataType type) {
    return type.name().toLowerCase(Locale.ROOT);
  }

  @Override
  public void fillInputs(long seed) {
    Random random = new Random(seed);
    for (int i = 0; i < inputs.length; i++) {
      ByteBuffer buffer = inputs[i];
      buffer.clear();
      DataType type = interpreter.getInputTensor(i).dataType();
      if (type == DataType.FLOAT32) {
        while (buffer.remaining() >= 4) {
          buffer.putFloat(random.nextFloat() * 2f - 1f); // uniform in [-1, 1)
        }
      } else if (type == DataType.BOOL) {
        while (buffer.hasRemaining()) {
          buffer.put((byte) random.nextInt(2));
        }
      } else {
        byte[] noise = new byte[buffer.remaining()]; // integers over their whole range
        random.nextBytes(noise);
        buffer.put(noise);
      }
      buffer.rewind();
    }
  }

  @Override
  public void setInput(int index, NpyArray data) throws BenchFailure {
    ByteBuffer buffer = inputs[index];
    byte[] bytes = data.data();
    if (bytes.length != buffer.capacity()) {
      throw new BenchFailure(
          Status.INVALID_ARGUMENTS,
          "input " + index + " takes " + buffer.capacity() + " bytes, not " + bytes.length);
    }
    buffer.clear();
    buffer.put(bytes); // .npy data is little-endian, as every Android ABI is
    buffer.rewind();
  }

  @Override
  public NpyArray output(int index) {
    ByteBuffer buffer = (ByteBuffer) outputs.get(index);
    byte[] bytes = new byte[buffer.capacity()];
    buffer.rewind();
    buffer.get(bytes);
    buffer.rewind();
    Tensor tensor = interpreter.getOutputTensor(index);
    return new NpyArray(dtypeName(tensor.dataType()), tensor.shape(), bytes);
  }

  @Override
  public void run() throws BenchFailure {
    for (ByteBuffer input : inputs) {
      input.rewind();
    }
    for (Object output : outputs.values()) {
      ((ByteBuffer) output).rewind();
    }
    try {
      interpreter.runForMultipleInputsOutputs(inputs, outputs);
    } catch (IllegalArgumentException | IllegalStateException e) {
      throw new BenchFailure(Status.INFERENCE_FAILED, "inference failed: " + e.getMessage(), e);
    }
  }

  @Override
  public void close() {
    if (interpreter != null) {
      interpreter.close();
      interpreter = null;
    }
    if (gpuDelegate != null) {
      gpuDelegate.close();
      gpuDelegate = null;
    }
    if (nnApiDelegate != null) {
      nnApiDelegate.close();
      nnApiDelegate = null;
    }
  }
}
