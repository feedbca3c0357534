"""Offline stand-in for @rules_java//java:defs.bzl: the native Java rules under their names.

These are exactly the symbols @bazel_tools loads from rules_java (Bazel 4.2); tfsmooth builds no
Java.
"""

java_binary = native.java_binary
java_import = native.java_import
java_library = native.java_library
java_proto_library = native.java_proto_library
java_runtime = native.java_runtime
java_toolchain = native.java_toolchain
