-- vrouter_mirror.lua: Wireshark dissector for Contrail / Tungsten Fabric
-- vRouter mirror datagrams (the "Juniper header" mode): UDP to the
-- analyzer, default port 8099, payload = metadata TLVs (type, length, value,
-- ending with FF 00), optionally behind the 16-byte record header of legacy
-- vRouters, then the mirrored Ethernet frame.
--
-- Unlike "Decode As ... juniper" it reads legacy payloads, skips TLV types
-- it does not know, and hands the inner frame to the Ethernet dissector so
-- that every display filter applies to the mirrored traffic.
--
-- Install: copy this file into the personal Lua plugins folder
-- (Help > About Wireshark > Folders, e.g. ~/.local/lib/wireshark/plugins/),
-- or load it once: wireshark -X lua_script:vrouter_mirror.lua raw.pcap
-- The UDP ports are a preference: Edit > Preferences > Protocols > VRMIRROR,
-- or -o vrmirror.ports:8099,9000
--
-- Fields: vrmirror.src_vn, vrmirror.dst_vn, vrmirror.host, vrmirror.flags
-- (and vrmirror.flags.pass, .deny, .mirror, ... .ingress), vrmirror.direction,
-- vrmirror.legacy, vrmirror.error.

local proto = Proto("vrmirror", "vRouter Mirror")

local TLV_HOST, TLV_FLAGS, TLV_SRC_VN, TLV_DST_VN, TLV_END = 1, 2, 3, 4, 255
local DEFAULT_PORTS = "8099"

local tlv_names = {
    [TLV_HOST] = "Capture host",
    [TLV_FLAGS] = "Flags",
    [TLV_SRC_VN] = "Source VN",
    [TLV_DST_VN] = "Destination VN",
    [TLV_END] = "End",
}

-- Action bits of the flags TLV: bit n is the vRouter agent's flow action n;
-- bit 30 says the packet entered the vRouter from a VM interface.
local flag_bits = {
    { "alert", "Alert", 0x00000002 },
    { "drop", "Drop", 0x00000004 },
    { "deny", "Deny", 0x00000008 },
    { "log", "Log", 0x00000010 },
    { "pass", "Pass", 0x00000020 },
    { "reject", "Reject", 0x00000040 },
    { "mirror", "Mirror", 0x00000080 },
    { "vrf_translate", "VRF translate", 0x00000100 },
    { "apply_qos", "Apply QoS", 0x00000200 },
    { "hbs", "Host-based service", 0x00000400 },
    { "trap", "Trap", 0x10000000 },
    { "implicit_deny", "Implicit deny", 0x20000000 },
    { "ingress", "Ingress", 0x40000000 },
}

local f = {
    legacy = ProtoField.bool("vrmirror.legacy", "Legacy record header"),
    rec_time = ProtoField.absolute_time("vrmirror.record.time", "Record time", base.UTC),
    rec_incl = ProtoField.uint32("vrmirror.record.incl_len", "Record included length"),
    rec_orig = ProtoField.uint32("vrmirror.record.orig_len", "Record original length"),
    tlv = ProtoField.bytes("vrmirror.tlv", "TLV"),
    tlv_type = ProtoField.uint8("vrmirror.tlv.type", "Type", base.DEC, tlv_names),
    tlv_len = ProtoField.uint8("vrmirror.tlv.len", "Length"),
    tlv_value = ProtoField.bytes("vrmirror.tlv.value", "Value"),
    host = ProtoField.ipv4("vrmirror.host", "Capture host"),
    flags = ProtoField.uint32("vrmirror.flags", "Flags", base.HEX),
    src_vn = ProtoField.string("vrmirror.src_vn", "Source VN"),
    dst_vn = ProtoField.string("vrmirror.dst_vn", "Destination VN"),
    direction = ProtoField.string("vrmirror.direction", "Direction"),
    frame_len = ProtoField.uint32("vrmirror.frame_len", "Mirrored frame length"),
    frame = ProtoField.bytes("vrmirror.frame", "Mirrored frame"),
    err = ProtoField.string("vrmirror.error", "Decoding error"),
    err_off = ProtoField.uint32("vrmirror.error_offset", "Decoding error offset"),
}
local flag_fields = {}
for _, b in ipairs(flag_bits) do
    local pf = ProtoField.bool("vrmirror.flags." .. b[1], b[2], 32, nil, b[3])
    flag_fields[#flag_fields + 1] = pf
    f["flag_" .. b[1]] = pf
end

local f_list = {}
for _, v in pairs(f) do f_list[#f_list + 1] = v end
proto.fields = f_list

local ex_malformed = ProtoExpert.new("vrmirror.malformed", "Malformed vRouter mirror record",
    expert.group.MALFORMED, expert.severity.ERROR)
local ex_unknown = ProtoExpert.new("vrmirror.unknown_tlv", "Unknown metadata TLV type, skipped",
    expert.group.UNDECODED, expert.severity.NOTE)
proto.experts = { ex_malformed, ex_unknown }

proto.prefs.ports = Pref.range("UDP ports", DEFAULT_PORTS,
    "UDP destination ports of vRouter mirror datagrams (the analyzer's udp_port)", 65535)

local eth = Dissector.get("eth_withoutfcs")

-- A VN name is plain ASCII: anything else means the list was misread.
local function printable(tvb, off, len)
    for i = off, off + len - 1 do
        local c = tvb(i, 1):uint()
        if c < 0x21 or c > 0x7e then return false end
    end
    return true
end

-- parse_tlvs walks the metadata list from off to the end of the datagram
-- (len bytes). It returns the offset after the end marker and what it
-- found, or nil, an error name and the offset of the bad TLV. With tree
-- it adds the items.
local function parse_tlvs(tvb, off, len, tree)
    local m = {}
    local i = off
    while true do
        if i + 2 > len then return nil, "bad-tlv", i, "no end marker before the datagram ends" end
        local t, l = tvb(i, 1):uint(), tvb(i + 1, 1):uint()
        if t == TLV_END then
            if l ~= 0 then return nil, "bad-tlv", i, "end marker with a non-zero length" end
            if tree then
                local st = tree:add(f.tlv, tvb(i, 2)):set_text("End of metadata")
                st:add(f.tlv_type, tvb(i, 1))
                st:add(f.tlv_len, tvb(i + 1, 1))
            end
            return i + 2, m
        end
        local v = i + 2
        if v + l > len then return nil, "bad-tlv", i, "TLV value runs past the datagram" end
        if (t == TLV_HOST or t == TLV_FLAGS) and l ~= 4 then
            return nil, "bad-tlv", i, "host or flags TLV not 4 bytes long"
        end
        if (t == TLV_SRC_VN or t == TLV_DST_VN) and not printable(tvb, v, l) then
            return nil, "bad-tlv", i, "VN name is not printable ASCII"
        end
        local st
        if tree then
            st = tree:add(f.tlv, tvb(i, 2 + l)):set_text((tlv_names[t] or ("Unknown type " .. t)) .. " TLV")
            st:add(f.tlv_type, tvb(i, 1))
            st:add(f.tlv_len, tvb(i + 1, 1))
        end
        if t == TLV_HOST then
            m.host = tvb(v, 4)
        elseif t == TLV_FLAGS then
            m.flags = tvb(v, 4)
        elseif t == TLV_SRC_VN then
            m.src_vn = tvb(v, l)
        elseif t == TLV_DST_VN then
            m.dst_vn = tvb(v, l)
        elseif st then
            if l > 0 then st:add(f.tlv_value, tvb(v, l)) end
            st:add_proto_expert_info(ex_unknown)
        end
        if st then
            if t == TLV_HOST then st:add(f.host, tvb(v, 4)) end
            if t == TLV_FLAGS then st:add(f.flags, tvb(v, 4)) end
            if t == TLV_SRC_VN then st:add(f.src_vn, tvb(v, l)) end
            if t == TLV_DST_VN then st:add(f.dst_vn, tvb(v, l)) end
        end
        i = v + l
    end
end

-- A current payload starts with a known TLV type; anything else is either
-- a legacy record header (it starts with a timestamp) or a list whose
-- first TLV type is unknown. The header's incl_len counts either all the
-- bytes after it or only the frame.
local function is_legacy(tvb, len)
    local first = tvb(0, 1):uint()
    if first == TLV_HOST or first == TLV_FLAGS or first == TLV_SRC_VN or first == TLV_DST_VN or first == TLV_END then
        return false
    end
    if len < 16 + 2 then return false end
    local incl = tvb(8, 4):uint()
    if incl == len - 16 then return true end
    local tlv_end = parse_tlvs(tvb, 16, len, nil)
    return tlv_end ~= nil and incl == len - tlv_end
end

local function malformed(item, tvb, name, off, why)
    item:add(f.err, name):set_generated()
    item:add(f.err_off, off):set_generated()
    item:add_proto_expert_info(ex_malformed, why)
    return tvb:len()
end

function proto.dissector(tvb, pinfo, tree)
    local len = tvb:len()
    if len < 2 then return 0 end
    pinfo.cols.protocol = "VRMIRROR"
    local item = tree:add(proto, tvb())
    local off = 0
    if is_legacy(tvb, len) then
        item:add(f.legacy, true):set_generated()
        local rh = item:add(tvb(0, 16), "Legacy record header")
        rh:add(f.rec_time, tvb(0, 8), NSTime.new(tvb(0, 4):uint(), tvb(4, 4):uint() * 1000))
        rh:add(f.rec_incl, tvb(8, 4))
        rh:add(f.rec_orig, tvb(12, 4))
        off = 16
    end
    local meta = item:add(tvb(off, 0), "Metadata")
    local tlv_end, m, bad_off, why = parse_tlvs(tvb, off, len, meta)
    if tlv_end == nil then
        return malformed(item, tvb, m, bad_off, why)
    end
    meta:set_len(tlv_end - off)

    -- Shown again at the top of the tree, where filters and columns look.
    if m.src_vn then item:add(f.src_vn, m.src_vn):set_generated() end
    if m.dst_vn then item:add(f.dst_vn, m.dst_vn):set_generated() end
    if m.host then item:add(f.host, m.host):set_generated() end
    local dir
    if m.flags then
        local ft = item:add(f.flags, m.flags)
        ft:set_generated()
        for _, pf in ipairs(flag_fields) do ft:add(pf, m.flags) end
        dir = (bit32.band(m.flags:uint(), 0x40000000) ~= 0) and "ingress" or "egress"
    elseif m.src_vn and not m.dst_vn then
        dir = "ingress" -- port mirroring, traffic from the VM
    elseif m.dst_vn and not m.src_vn then
        dir = "egress" -- port mirroring, traffic to the VM
    end
    if dir then item:add(f.direction, dir):set_generated() end

    local frame_len = len - tlv_end
    if frame_len < 14 then
        return malformed(item, tvb, "bad-inner-frame", tlv_end, "mirrored frame shorter than an Ethernet header")
    end
    item:add(f.frame_len, frame_len):set_generated()
    item:add(f.frame, tvb(tlv_end))
    item:set_len(tlv_end)
    local summary = {}
    if m.src_vn then summary[#summary + 1] = m.src_vn:string() end
    if m.dst_vn then summary[#summary + 1] = "-> " .. m.dst_vn:string() end
    if dir then summary[#summary + 1] = "(" .. dir .. ")" end
    if #summary > 0 then item:append_text(", " .. table.concat(summary, " ")) end

    local inner = tvb(tlv_end):tvb()
    -- Old DPDK vRouters labelled inner IPv6 as IPv4: trust the version.
    if frame_len > 14 and inner(12, 2):uint() == 0x0800 and bit32.rshift(inner(14, 1):uint(), 4) == 6 then
        local ba = inner:bytes()
        ba:set_index(12, 0x86)
        ba:set_index(13, 0xdd)
        inner = ba:tvb("Mirrored frame (IPv6 ethertype restored)")
    end
    eth:call(inner, pinfo, tree)
    return len
end

local registered = DEFAULT_PORTS
DissectorTable.get("udp.port"):add(registered, proto)

function proto.prefs_changed()
    local ports = tostring(proto.prefs.ports)
    if ports ~= registered then
        local t = DissectorTable.get("udp.port")
        t:remove(registered, proto)
        t:add(ports, proto)
        registered = ports
    end
end
