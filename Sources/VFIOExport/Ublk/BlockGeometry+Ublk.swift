import CUring

/// What a ublk device presents follows from the export's geometry alone: the ublk parameters
/// (``parameters()``) and the device info (``deviceInfo(queues:depth:flags:)``).
extension BlockGeometry {
    /// The logical block size as a shift (9…12).
    var blockShift: Int { blockSize.trailingZeroBitCount }
    /// 512-byte sectors per logical block.
    var sectorsPerBlock: UInt64 { UInt64(blockSize >> 9) }

    /// Checks what ublk_drv checks on SET_PARAMS, so a bad shape fails here with its reason.
    public func validateForUblk() throws(UblkError) {
        guard blockSize >= 512, blockSize <= 4096, blockSize & (blockSize - 1) == 0 else {
            throw .geometry("a logical block size of \(blockSize) bytes is outside ublk's 512…4096 (a power of two)")
        }
        guard blocks > 0 else { throw .geometry("the namespace has no blocks") }
        guard maxTransfer >= 4096, maxTransfer % blockSize == 0 else {
            throw .geometry(
                "a largest transfer of \(maxTransfer) bytes is below ublk's one page or not a whole number of \(blockSize)-byte blocks")
        }
        guard maxTransfer <= 1 << 25 else {
            throw .geometry("a largest transfer of \(maxTransfer) bytes is above ublk's 32 MiB per request")
        }
    }

    /// SET_PARAMS' argument: basic (size, block size, max sectors, cache attributes) and, when
    /// the device can discard or write zeroes, the discard limits (one range per discard).
    public func parameters() throws(UblkError) -> cublk_params {
        try validateForUblk()
        var p = cublk_params()
        p.len = CUBLK_PARAMS_LEN
        p.types = CUBLK_PARAM_TYPE_BASIC
        p.basic.logical_bs_shift = UInt8(blockShift)
        p.basic.physical_bs_shift = UInt8(blockShift)
        p.basic.io_min_shift = UInt8(blockShift)
        p.basic.io_opt_shift = UInt8(blockShift)
        p.basic.max_sectors = UInt32(maxTransfer >> 9)
        p.basic.dev_sectors = blocks * sectorsPerBlock
        var attrs: UInt32 = 0
        if readOnly { attrs |= CUBLK_ATTR_READ_ONLY }
        if volatileWriteCache { attrs |= CUBLK_ATTR_VOLATILE_CACHE | CUBLK_ATTR_FUA }
        p.basic.attrs = attrs
        if !readOnly, maxDiscardBlocks != nil || maxWriteZeroesBlocks != nil {
            p.types |= CUBLK_PARAM_TYPE_DISCARD
            p.discard.discard_granularity = UInt32(blockSize)
            p.discard.max_discard_sectors = sectors(maxDiscardBlocks)
            p.discard.max_discard_segments = maxDiscardBlocks == nil ? 0 : 1
            p.discard.max_write_zeroes_sectors = sectors(maxWriteZeroesBlocks)
        }
        return p
    }

    /// `blocks` as 512-byte sectors, capped to what the 32-bit field holds, rounded down to
    /// whole blocks; 0 for nil.
    private func sectors(_ blocks: UInt32?) -> UInt32 {
        guard let blocks else { return 0 }
        let s = min(UInt64(blocks) * sectorsPerBlock, UInt64(UInt32.max))
        return UInt32(s - s % sectorsPerBlock)
    }

    /// ADD_DEV's argument: `queues` queues of `depth` tags, buffers of ``maxTransfer`` bytes,
    /// the device number chosen by the kernel, and the feature flags `flags`.
    public func deviceInfo(queues: Int, depth: Int, flags: UInt64) throws(UblkError) -> cublk_dev_info {
        try validateForUblk()
        guard queues >= 1, queues <= 4096 else { throw .geometry("\(queues) queues is outside ublk's 1…4096") }
        guard depth >= 1, depth <= Int(CUBLK_MAX_QUEUE_DEPTH) else {
            throw .geometry("a queue depth of \(depth) is outside ublk's 1…\(CUBLK_MAX_QUEUE_DEPTH)")
        }
        var info = cublk_dev_info()
        info.nr_hw_queues = UInt16(queues)
        info.queue_depth = UInt16(depth)
        info.max_io_buf_bytes = UInt32(maxTransfer)
        info.dev_id = .max
        info.ublksrv_pid = -1
        info.flags = flags
        return info
    }
}
