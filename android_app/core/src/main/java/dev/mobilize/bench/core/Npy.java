package dev.mobilize.bench.core;

import java.io.ByteArrayOutputStream;
import java.io.File;
import java.io.FileInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.Charset;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Reads and writes the .npy format (versions 1.0 to 3.0) for the quality gate: C order,
 * little-endian, the dtypes a TFLite model's inputs and outputs use.
 */
public final class Npy {
  private static final byte[] MAGIC = {(byte) 0x93, 'N', 'U', 'M', 'P', 'Y'};
  private static final Charset LATIN_1 = Charset.forName("ISO-8859-1");
  private static final String[][] DTYPES = {
    {"float32", "<f4"}, {"float64", "<f8"}, {"float16", "<f2"},
    {"int8", "|i1"}, {"uint8", "|u1"}, {"int16", "<i2"}, {"int32", "<i4"}, {"int64", "<i8"},
    {"bool", "|b1"},
  };
  private static final Pattern DESCR = Pattern.compile("'descr'\\s*:\\s*'([^']*)'");
  private static final Pattern FORTRAN = Pattern.compile("'fortran_order'\\s*:\\s*(True|False)");
  private static final Pattern SHAPE = Pattern.compile("'shape'\\s*:\\s*\\(([^)]*)\\)");

  private Npy() {}

  /** The .npy descr of a numpy dtype name; IllegalArgumentException when unsupported. */
  public static String descrOf(String dtype) {
    for (String[] pair : DTYPES) {
      if (pair[0].equals(dtype)) {
        return pair[1];
      }
    }
    throw new IllegalArgumentException("unsupported dtype " + dtype);
  }

  static String dtypeOf(String descr) throws IOException {
    String normalized = descr.startsWith("=") ? "<" + descr.substring(1) : descr;
    for (String[] pair : DTYPES) {
      if (pair[1].equals(normalized)
          || (pair[1].startsWith("|") && pair[1].substring(1).equals(normalized.substring(1)))) {
        return pair[0];
      }
    }
    throw new IOException("unsupported .npy dtype '" + descr + "' (little-endian numbers only)");
  }

  public static NpyArray read(File file) throws IOException {
    InputStream stream = new FileInputStream(file);
    try {
      return read(readAll(stream), file.getName());
    } finally {
      stream.close();
    }
  }

  public static NpyArray read(byte[] bytes, String name) throws IOException {
    if (bytes.length < 10) {
      throw new IOException(name + " is too short to be a .npy file");
    }
    for (int i = 0; i < MAGIC.length; i++) {
      if (bytes[i] != MAGIC[i]) {
        throw new IOException(name + " is not a .npy file (bad magic)");
      }
    }
    int major = bytes[6] & 0xff;
    int headerLength;
    int offset;
    if (major == 1) {
      headerLength = (bytes[8] & 0xff) | (bytes[9] & 0xff) << 8;
      offset = 10;
    } else if (major == 2 || major == 3) {
      if (bytes.length < 12) {
        throw new IOException(name + " is truncated");
      }
      headerLength =
          (bytes[8] & 0xff)
              | (bytes[9] & 0xff) << 8
              | (bytes[10] & 0xff) << 16
              | (bytes[11] & 0xff) << 24;
      offset = 12;
    } else {
      throw new IOException(name + ": unsupported .npy version " + major);
    }
    if (headerLength < 0 || offset + headerLength > bytes.length) {
      throw new IOException(name + " is truncated");
    }
    String header = new String(bytes, offset, headerLength, LATIN_1);
    String dtype = dtypeOf(group(DESCR, header, name, "descr"));
    if ("True".equals(group(FORTRAN, header, name, "fortran_order"))) {
      throw new IOException(name + " is in Fortran order; save it with C order");
    }
    int[] shape = parseShape(group(SHAPE, header, name, "shape"));
    int start = offset + headerLength;
    byte[] data = new byte[bytes.length - start];
    System.arraycopy(bytes, start, data, 0, data.length);
    try {
      return new NpyArray(dtype, shape, data);
    } catch (IllegalArgumentException e) {
      throw new IOException(name + ": " + e.getMessage(), e);
    }
  }

  /** Writes a version 1.0 file whose header is padded to 64 bytes, as numpy writes it. */
  public static byte[] toBytes(NpyArray array) {
    StringBuilder shape = new StringBuilder();
    for (int i = 0; i < array.shape.length; i++) {
      shape.append(i == 0 ? "" : ", ").append(array.shape[i]);
    }
    if (array.shape.length == 1) {
      shape.append(',');
    }
    String dict =
        "{'descr': '"
            + descrOf(array.dtype)
            + "', 'fortran_order': False, 'shape': ("
            + shape
            + "), }";
    int unpadded = MAGIC.length + 4 + dict.length() + 1;
    int padding = (64 - unpadded % 64) % 64;
    StringBuilder header = new StringBuilder(dict);
    for (int i = 0; i < padding; i++) {
      header.append(' ');
    }
    header.append('\n');
    byte[] headerBytes = header.toString().getBytes(LATIN_1);
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    out.write(MAGIC, 0, MAGIC.length);
    out.write(1);
    out.write(0);
    out.write(headerBytes.length & 0xff);
    out.write((headerBytes.length >> 8) & 0xff);
    out.write(headerBytes, 0, headerBytes.length);
    byte[] data = array.data();
    out.write(data, 0, data.length);
    return out.toByteArray();
  }

  public static void write(File file, NpyArray array) throws IOException {
    AtomicFiles.writeBytes(file, toBytes(array));
  }

  private static String group(Pattern pattern, String header, String name, String key)
      throws IOException {
    Matcher matcher = pattern.matcher(header);
    if (!matcher.find()) {
      throw new IOException(name + ": .npy header has no " + key);
    }
    return matcher.group(1);
  }

  private static int[] parseShape(String text) throws IOException {
    List<Integer> dims = new ArrayList<>();
    for (String part : text.split(",")) {
      String trimmed = part.trim();
      if (trimmed.isEmpty()) {
        continue;
      }
      try {
        dims.add(Integer.parseInt(trimmed.endsWith("L") ? trimmed.substring(0, trimmed.length() - 1) : trimmed));
      } catch (NumberFormatException e) {
        throw new IOException("bad .npy shape (" + text + ")", e);
      }
    }
    int[] shape = new int[dims.size()];
    for (int i = 0; i < shape.length; i++) {
      shape[i] = dims.get(i);
    }
    return shape;
  }

  private static byte[] readAll(InputStream stream) throws IOException {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    byte[] chunk = new byte[1 << 16];
    int read;
    while ((read = stream.read(chunk)) != -1) {
      out.write(chunk, 0, read);
    }
    return out.toByteArray();
  }
}
