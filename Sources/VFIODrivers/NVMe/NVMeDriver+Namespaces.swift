/// What a namespace rescan found, by NSID.
public struct NVMeNamespaceChanges: Sendable, Equatable {
    public let added: [UInt32]
    public let removed: [UInt32]
    /// Still active, identified differently (size, format).
    public let changed: [UInt32]

    public init(added: [UInt32], removed: [UInt32], changed: [UInt32]) {
        self.added = added
        self.removed = removed
        self.changed = changed
    }

    public var isEmpty: Bool { added.isEmpty && removed.isEmpty && changed.isEmpty }
}

extension NVMeDriver {
    /// Identifies the active namespaces again — after a Namespace Attribute Changed event, say
    /// — and replaces ``namespaces`` with them; returns what changed. I/O to a namespace that
    /// went away fails from then on with a clear error. A control-path call: it runs admin
    /// commands, and may run alongside I/O.
    @discardableResult
    public func rescanNamespaces() throws(NVMeError) -> NVMeNamespaceChanges {
        try checkUsable()
        let found = try identifyNamespaces()
        let old = namespaceTable.withLock { table in
            defer { table = found }
            return table
        }
        let before = Dictionary(old.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        let after = Set(found.map(\.id))
        return NVMeNamespaceChanges(
            added: found.map(\.id).filter { before[$0] == nil },
            removed: old.map(\.id).filter { !after.contains($0) },
            changed: found.filter { ns in before[ns.id].map { $0 != ns } ?? false }.map(\.id))
    }
}
