// AddressSanitizer's report on Foundation's Process.run with many descriptors open.
//
//   swiftc -sanitize=address process-run-many-fds.swift -o /tmp/process-run-many-fds
//   /tmp/process-run-many-fds   # "heap-buffer-overflow ... in memcpy" from
//                               # Foundation's findMaximumOpenFromProcSelfFD, inside Process.run
//
// Process.run reads /proc/self/fd to find the highest open descriptor, and copies each entry's
// whole fixed-size name out of the directory buffer; where the last entry ends near the end of
// that buffer the copy reads past it. The program opens descriptors one at a time and runs
// /bin/true after each, so some count puts an entry there; it opens nothing else.
import Foundation

var held: [Int32] = []
for n in 0..<4000 {
    held.append(open("/dev/null", O_RDONLY))
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/bin/true")
    try process.run()
    process.waitUntilExit()
    if n % 500 == 0 { print("\(held.count) descriptors open") }
}
print("no report")
