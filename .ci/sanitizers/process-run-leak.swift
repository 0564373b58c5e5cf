// LeakSanitizer's report on Foundation's Process.run, in full.
//
//   swiftc -sanitize=address process-run-leak.swift -o /tmp/process-run-leak
//   /tmp/process-run-leak   # "Direct leak of 32 byte(s)": a weak-reference side table
//                           # allocated by swift_weakAssign inside Foundation.Process.run
//
// The program runs /bin/true once and keeps nothing: the side table is allocated and kept by
// swift-corelibs-foundation itself, so a test that runs a subprocess reports it.
import Foundation

let process = Process()
process.executableURL = URL(fileURLWithPath: "/bin/true")
try process.run()
process.waitUntilExit()
