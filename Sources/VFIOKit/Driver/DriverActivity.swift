import Synchronization

/// What a driver has done: interrupts per vector, operations completed, errors seen. A host
/// reads it for its status and metrics (``PCIDriver/activity``).
public struct DriverActivity: Sendable, Equatable, Codable {
    /// One interrupt vector's count since the driver started.
    public struct Vector: Sendable, Equatable, Codable {
        /// The vector as a person names it: "MSI-X 3", "INTx", "IMS 17".
        public var name: String
        /// The group the vector belongs to, such as an IMS slot group; nil when there is none.
        public var group: String?
        /// Times the vector fired since the driver started.
        public var count: UInt64

        /// A vector's count, under `name` and in `group` when it has one.
        public init(name: String, group: String? = nil, count: UInt64) {
            self.name = name
            self.group = group
            self.count = count
        }
    }

    /// One queue's work, each count taken where it happens: submitted when the driver hands
    /// work to the device, completed when it consumes the device's completion, timed out when a
    /// wait for it gave up.
    public struct Queue: Sendable, Equatable, Codable {
        /// The queue as a person names it, such as "queue 0".
        public var name: String
        /// Commands handed to the device.
        public var submitted: UInt64
        /// Completions the driver consumed.
        public var completed: UInt64
        /// Waits that gave up before their completion came.
        public var timeouts: UInt64

        /// Submitted and not (yet) completed.
        public var inFlight: Int64 { Int64(bitPattern: submitted &- completed) }

        /// One queue's counts as the driver took them.
        public init(name: String, submitted: UInt64, completed: UInt64, timeouts: UInt64) {
            self.name = name
            self.submitted = submitted
            self.completed = completed
            self.timeouts = timeouts
        }
    }

    /// Interrupt counts, one per vector the driver counts.
    public var interrupts: [Vector]
    /// Units of work the device completed (I/O commands, computations).
    public var operations: UInt64
    /// Work that failed.
    public var errors: UInt64
    /// Per-queue counts, for drivers that keep them; nil otherwise.
    public var queues: [Queue]?

    /// A snapshot with the given counts; all zero and no queues by default.
    public init(interrupts: [Vector] = [], operations: UInt64 = 0, errors: UInt64 = 0, queues: [Queue]? = nil) {
        self.interrupts = interrupts
        self.operations = operations
        self.errors = errors
        self.queues = queues
    }

    /// The sum of every vector's count.
    public var totalInterrupts: UInt64 { interrupts.reduce(0) { $0 + $1.count } }
}

/// Counters a driver keeps for ``DriverActivity``: one per vector, fixed when made, so that
/// counting from an interrupt handler takes a lock briefly and allocates nothing.
public final class ActivityCounters: Sendable {
    private struct Counts {
        var interrupts: [UInt64]
        var operations: UInt64 = 0
        var errors: UInt64 = 0
    }
    private let vectors: [(name: String, group: String?)]
    private let counts: Mutex<Counts>

    /// Counters for vectors named `vectors` (index i counts vector i).
    public init(vectors: [(name: String, group: String?)]) {
        self.vectors = vectors
        counts = Mutex(Counts(interrupts: Array(repeating: 0, count: vectors.count)))
    }

    /// Adds `count` fires to vector `index`; out-of-range indexes are ignored.
    @inline(__always)
    public func interrupted(_ index: Int, count: UInt64) {
        counts.withLock { c in
            if c.interrupts.indices.contains(index) { c.interrupts[index] &+= count }
        }
    }

    /// Counts `operations` completed units of work; takes the lock briefly, allocates nothing.
    public func completed(_ operations: UInt64 = 1) { counts.withLock { $0.operations &+= operations } }
    /// Counts `errors` failed units of work; takes the lock briefly, allocates nothing.
    public func failed(_ errors: UInt64 = 1) { counts.withLock { $0.errors &+= errors } }

    /// The counts now, as a ``DriverActivity``; allocates the snapshot's arrays.
    public var snapshot: DriverActivity {
        let c = counts.withLock { $0 }
        return DriverActivity(
            interrupts: vectors.indices.map {
                DriverActivity.Vector(name: vectors[$0].name, group: vectors[$0].group, count: c.interrupts[$0])
            },
            operations: c.operations, errors: c.errors)
    }
}
