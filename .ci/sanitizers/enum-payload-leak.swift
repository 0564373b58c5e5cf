// LeakSanitizer's false report of an object that is alive, referenced only from a case of a
// multi-payload enum:
//
//   swiftc -sanitize=address enum-payload-leak.swift -o /tmp/enum-payload-leak
//   /tmp/enum-payload-leak     # "Direct leak" of the B objects, which `holder` still holds
//
// Swift keeps such an enum's case in the spare bits of the payload pointer, so the stored word is
// not the object's address and LeakSanitizer, scanning for addresses, finds no reference.
// The A objects are found: their case's tag is zero. The mock kernel keeps its open files this
// way (OpenFile.Kind), so a fuzz target holding a mock device open for its whole run sees it.
final class A { var x = [1, 2, 3] }
final class B { var y = 1 }
enum Kind { case a(A), b(B), text([UInt8]), none }
final class Holder { var files: [Int32: Kind] = [:] }
nonisolated(unsafe) var holder: Holder? = Holder()
for i in 0..<4 { holder!.files[Int32(i)] = i % 2 == 0 ? .a(A()) : .b(B()) }
print("holding", holder!.files.count)
