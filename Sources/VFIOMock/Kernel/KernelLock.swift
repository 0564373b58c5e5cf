import VFIOKit

/// The mock kernel's one lock. Every piece of kernel state is read and changed only inside
/// `withLock`. Device models are never called while it is held, so a device may call back into
/// its ``DeviceBus`` from any thread, including from inside a register access. Blocked readers
/// `wait()` inside it and are woken by `broadcast()`.
typealias KernelLock = ConditionLock
