// LeakSanitizer's false report of the side table of an object that is alive and once had a weak
// reference:
//
//   swiftc -sanitize=address weak-side-table-leak.swift -o /tmp/weak-side-table-leak
//   /tmp/weak-side-table-leak          # "Direct leak of 32 byte(s)" from formWeakReference
//   /tmp/weak-side-table-leak --keep   # the weak reference kept too: no report
//
// The first weak reference to an object allocates a side table for its counts, and the object's
// refcount word then holds the table's address shifted and flagged, not the address itself.
// Once no weak reference is left, that word is the only reference, LeakSanitizer does not
// recognise it, and it reports the table while `host` still holds the object. Foundation's
// Process, the daemon's DriverHost (each hosted device's removal callback captures it weakly)
// and the devices an IOMMUContext holds weakly can all be alive in that state at exit.
final class Host {
    var callbacks: [() -> Void] = []
    func attach() { callbacks.append { [weak self] in _ = self } }
}

let host = Host()
host.attach()
if !CommandLine.arguments.contains("--keep") { host.callbacks.removeAll() }
print("host alive, \(host.callbacks.count) weak reference(s) to it left")
