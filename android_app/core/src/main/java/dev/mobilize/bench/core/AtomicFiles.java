package dev.mobilize.bench.core;

import java.io.File;
import java.io.FileOutputStream;
import java.io.IOException;
import java.nio.charset.Charset;

/**
 * Whole-file writes that a reader never sees half done: write a temporary file in the same
 * folder, sync it, then rename it over the target (rename(2) replaces atomically on one file
 * system). java.io only: java.nio.file needs API 26 and the app supports 24.
 */
public final class AtomicFiles {
  private static final Charset UTF_8 = Charset.forName("UTF-8");

  private AtomicFiles() {}

  public static void writeText(File target, String text) throws IOException {
    writeBytes(target, text.getBytes(UTF_8));
  }

  public static void writeBytes(File target, byte[] bytes) throws IOException {
    File folder = target.getAbsoluteFile().getParentFile();
    if (folder != null && !folder.isDirectory() && !folder.mkdirs() && !folder.isDirectory()) {
      throw new IOException("cannot create folder " + folder);
    }
    File temporary = new File(folder, "." + target.getName() + ".tmp");
    FileOutputStream stream = new FileOutputStream(temporary);
    try {
      stream.write(bytes);
      stream.flush();
      stream.getFD().sync();
    } finally {
      stream.close();
    }
    if (!temporary.renameTo(target)) {
      temporary.delete();
      throw new IOException("cannot rename " + temporary + " to " + target);
    }
  }
}
