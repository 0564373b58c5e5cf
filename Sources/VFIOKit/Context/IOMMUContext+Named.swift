import Logging
import Synchronization

extension IOMMUContext {
    /// The context called `name` on `system`, made with `backend` on first use: parts of a program
    /// that name the same context share one address space without passing it around, as with
    /// libvfn's `iommu_get_context(name)`.
    ///
    /// The registry does not keep a context alive: it lasts while someone holds it, and a name
    /// whose context was closed or released gets a new one. Throws
    /// ``VFIOError/invalidArgument(operation:reason:)`` when the live context was made for another
    /// backend than a non-`.auto` `backend`.
    public static func named(
        _ name: String, backend: Backend = .auto, system: any SystemCalls = HostSystemCalls.shared,
        logger: Logger = .vfiokitSilent
    ) throws(VFIOError) -> IOMMUContext {
        let key = NamedContexts.Key(system: ObjectIdentifier(system), name: name)
        return try NamedContexts.table.withLock { (table) throws(VFIOError) -> IOMMUContext in
            if let existing = table[key]?.context, !existing.isClosed {
                let running = existing.mode?.backend ?? existing.requested
                guard backend == .auto || running == .auto || running == backend else {
                    throw .invalidArgument(
                        operation: "IOMMUContext.named(\"\(name)\")",
                        reason:
                            "the context of that name runs on the \(running) backend, not \(backend): ask for .auto or \(running), or use another name"
                    )
                }
                return existing
            }
            table = table.filter { $0.value.context.map { !$0.isClosed } ?? false }
            let context = IOMMUContext(backend: backend, system: system, logger: logger)
            table[key] = NamedContexts.Entry(context: context)
            return context
        }
    }
}

/// The live named contexts, per kernel (or kernel model), held weakly.
private enum NamedContexts {
    struct Key: Hashable {
        let system: ObjectIdentifier
        let name: String
    }
    struct Entry {
        weak var context: IOMMUContext?
    }
    static let table = Mutex<[Key: Entry]>([:])
}
