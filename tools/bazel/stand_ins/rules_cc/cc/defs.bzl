"""Offline stand-in for @rules_cc//cc:defs.bzl: the native C++ rules under their rules_cc names.

These are exactly the symbols @bazel_tools loads from rules_cc (Bazel 4.2); tfsmooth builds no C++.
"""

cc_binary = native.cc_binary
cc_import = native.cc_import
cc_library = native.cc_library
cc_proto_library = native.cc_proto_library
cc_test = native.cc_test
cc_toolchain = native.cc_toolchain
cc_toolchain_suite = native.cc_toolchain_suite
objc_library = native.objc_library
