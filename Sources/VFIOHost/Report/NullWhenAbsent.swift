/// An optional that is encoded as `null` when absent instead of leaving its key out, as
/// synthesized `Encodable` does, so that every `vfiokit list` and `info` object has every key.
@propertyWrapper
public struct NullWhenAbsent<Value: Encodable>: Encodable {
    /// The value; nil is written as `null`.
    public var wrappedValue: Value?

    /// Wraps `wrappedValue`.
    public init(wrappedValue: Value?) { self.wrappedValue = wrappedValue }

    /// Writes the value, or `null` when there is none.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        if let wrappedValue { try container.encode(wrappedValue) } else { try container.encodeNil() }
    }
}

extension NullWhenAbsent: Equatable where Value: Equatable {}
extension NullWhenAbsent: Sendable where Value: Sendable {}
