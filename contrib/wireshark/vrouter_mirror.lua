-- vrouter_mirror.lua: Wireshark dissector for Contrail / Tungsten Fabric
-- vRouter mirror datagrams (the "Juniper header" mode): UDP to the
-- analyzer, default port 8099, payload = metadata TLVs (type, length, value,
-- ending with FF 00), optionally behind the 16-byte record header of legacy
-- vRouters, then the mirrored Ethernet frame.
--
-- It decodes what vrsniff decodes, with the same rules (docs/wireshark.md):
-- unknown TLV types are skipped by length; VN names are any bytes, shown as
-- UTF-8; a 16-byte host TLV is an IPv6 router id and a 2-byte flags TLV
-- holds 16 action bits; a known type of any other length is shown raw and
-- flagged; a VN name over 255 bytes, whose length byte wrapped, is recovered
-- when exactly one reading of the list is consistent; the mirrored frame's
-- length is the real one (the UDP length says it), and a record cut by the
-- snap length is marked truncated; fragments that Wireshark's IPv4
-- reassembly joined across a reused IP ID are not taken as one datagram.
-- The mirrored frame goes to the Ethernet dissector, so every display
-- filter applies to the mirrored traffic. Inside fabric overlays (MPLS
-- over UDP 6635 or GRE, VXLAN 4789) Wireshark's own dissectors hand the
-- inner datagram over.
--
-- Install: copy this file into the personal Lua plugins folder
-- (Help > About Wireshark > Folders, e.g. ~/.local/lib/wireshark/plugins/),
-- or load it once: wireshark -X lua_script:vrouter_mirror.lua raw.pcap
-- The UDP ports are a preference: Edit > Preferences > Protocols > VRMIRROR,
-- or -o vrmirror.ports:8099,9000; Decode As works too.
--
-- Fields: vrmirror.src_vn, .dst_vn, .host (IPv4), .host6 (IPv6), .flags
-- (.flags_len, and the bits .flags.pass, .deny, .mirror, ... .ingress),
-- .direction, .frame_len, .frame, .truncated, .name_recovered, .odd_tlvs,
-- .legacy, .error, .error_offset; experts vrmirror.malformed, .snaplen,
-- .odd_tlv, .unknown_tlv, .repeated_tlv, .wrapped_len, .frag_mixed.

local proto = Proto("vrmirror", "vRouter Mirror")

local TLV_HOST, TLV_FLAGS, TLV_SRC_VN, TLV_DST_VN, TLV_END = 1, 2, 3, 4, 255
local DEFAULT_PORTS = "8099"
-- TLV steps the search for wrapped name lengths may take before it gives
-- up: real lists take a handful, a hostile one could take millions.
local SEARCH_BUDGET = 4096
-- Fragments of one datagram further apart than this many other datagrams
-- from their source are not one datagram (Linux's ipfrag_max_dist).
local FRAG_MAX_DIST = 4

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
local FLAG_INGRESS = 0x40000000

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
    host6 = ProtoField.ipv6("vrmirror.host6", "Capture host (IPv6)"),
    flags = ProtoField.uint32("vrmirror.flags", "Flags", base.HEX),
    flags_len = ProtoField.uint8("vrmirror.flags_len", "Flags length"),
    src_vn = ProtoField.string("vrmirror.src_vn", "Source VN"),
    dst_vn = ProtoField.string("vrmirror.dst_vn", "Destination VN"),
    name_recovered = ProtoField.bool("vrmirror.name_recovered", "VN name length recovered"),
    odd_tlvs = ProtoField.uint8("vrmirror.odd_tlvs", "TLVs of an unexpected length"),
    direction = ProtoField.string("vrmirror.direction", "Direction"),
    frame_len = ProtoField.uint32("vrmirror.frame_len", "Mirrored frame length"),
    truncated = ProtoField.bool("vrmirror.truncated", "Truncated by the capture"),
    frame = ProtoField.bytes("vrmirror.frame", "Mirrored frame"),
    err = ProtoField.string("vrmirror.error", "Decoding error"),
    err_off = ProtoField.uint32("vrmirror.error_offset", "Decoding error offset"),
}
local flag_fields = {}
for _, b in ipairs(flag_bits) do
    local pf = ProtoField.bool("vrmirror.flags." .. b[1], b[2], 32, nil, b[3])
    flag_fields[#flag_fields + 1] = { pf, b[3] }
    f["flag_" .. b[1]] = pf
end

local f_list = {}
for _, v in pairs(f) do f_list[#f_list + 1] = v end
proto.fields = f_list

local ex = {
    malformed = ProtoExpert.new("vrmirror.malformed", "Malformed vRouter mirror record",
        expert.group.MALFORMED, expert.severity.ERROR),
    truncated = ProtoExpert.new("vrmirror.snaplen", "vRouter mirror record cut by the capture's snap length",
        expert.group.UNDECODED, expert.severity.WARN),
    unknown = ProtoExpert.new("vrmirror.unknown_tlv", "Unknown metadata TLV type, skipped",
        expert.group.UNDECODED, expert.severity.NOTE),
    odd = ProtoExpert.new("vrmirror.odd_tlv", "Metadata TLV of an unexpected length, shown raw",
        expert.group.PROTOCOL, expert.severity.WARN),
    recovered = ProtoExpert.new("vrmirror.wrapped_len", "VN name over 255 bytes: its length byte wrapped",
        expert.group.PROTOCOL, expert.severity.NOTE),
    repeated = ProtoExpert.new("vrmirror.repeated_tlv", "Metadata TLV repeated: the last one counts",
        expert.group.PROTOCOL, expert.severity.NOTE),
    frag_mixed = ProtoExpert.new("vrmirror.frag_mixed",
        "IP fragments of different datagrams reassembled (IP ID reused): only the first fragment is used",
        expert.group.REASSEMBLE, expert.severity.WARN),
}
proto.experts = { ex.malformed, ex.truncated, ex.unknown, ex.odd, ex.recovered, ex.repeated, ex.frag_mixed }

proto.prefs.ports = Pref.range("UDP ports", DEFAULT_PORTS,
    "UDP destination ports of vRouter mirror datagrams (the analyzer's udp_port)", 65535)

local eth = Dissector.get("eth_withoutfcs")

-- The UDP header in front of the payload says how long the datagram was,
-- even when only its first IP fragment, or part of it, was captured.
local udp_length = Field.new("udp.length")
-- The fragments an IPv4 reassembly used (frame numbers), and the outer
-- IPv4 header of this frame.
local ip_fragment = Field.new("ip.fragment")
local ip_src = Field.new("ip.src")
local ip_frag_offset = Field.new("ip.frag_offset")

local function last(extractor)
    local all = { extractor() }
    return all[#all]
end

local function u8(tvb, off) return tvb(off, 1):uint() end
local function u16(tvb, off) return tvb(off, 2):uint() end

local function is_vlan(et) return et == 0x8100 or et == 0x88a8 or et == 0x9100 end

-- plausible tells whether the bytes at off up to the datagram's end n, of
-- which those up to cap were captured, read as an Ethernet frame a VM
-- sent: IPv4 or IPv6 (behind up to two tags) whose header length matches
-- the bytes that follow, a short frame's padding allowed; ARP of
-- at least 28 bytes; an 802.3 length that fits; any other EtherType. What
-- the capture cut cannot be checked and is taken as plausible.
local function plausible(tvb, off, n, cap)
    local size = n - off
    if size < 14 then return false end
    local et = off + 12
    local tags = 0
    while tags < 2 and et + 2 <= cap and is_vlan(u16(tvb, et)) do
        et, tags = et + 4, tags + 1
    end
    if et + 2 > cap then return true end
    local typ, ip = u16(tvb, et), et + 2
    local rest = n - ip
    local function fits(l) return l == rest or (l < rest and size <= 64) end
    if typ == 0x0800 or typ == 0x86dd then
        if ip + 6 > cap then return true end
        local b = u8(tvb, ip)
        local v = bit32.rshift(b, 4)
        if v == 4 then return bit32.band(b, 0x0f) >= 5 and fits(u16(tvb, ip + 2)) end
        if v == 6 then return fits(40 + u16(tvb, ip + 4)) end
        return false
    end
    if typ == 0x0806 then return rest >= 28 end
    if typ >= 0x0600 then return true end
    return typ <= rest -- 802.3: a length
end

local function known(t) return t == TLV_HOST or t == TLV_FLAGS or t == TLV_SRC_VN or t == TLV_DST_VN end

-- read_tlvs finds the TLV list that starts at off in a datagram that ends
-- at n, of which the bytes up to cap were captured. It returns a table:
--   ok = true, tlvs = { {off, type, len}, ... }, stop = offset after FF 00,
--     recovered = true when a wrapped name length was resolved;
--   or ok = false, err = "bad-tlv" | "truncated", at = offset, and tlvs =
--     what was read as written before the failure.
--
-- The agent writes a name's length into one byte, so a name of L + 256k
-- bytes arrives with length byte L. The list as written is taken when all
-- its types are known and it ends in FF 00 inside the datagram. Otherwise
-- each name TLV (at most MAX_NAME_TLVS of them) may hold L + 256k bytes:
-- exactly one reading that ends in FF 00 followed by a plausible Ethernet
-- frame is taken; none or several make the record malformed, or truncated
-- when the list as written ran into the end of the capture.
local MAX_NAME_TLVS = 8

local function read_tlvs(tvb, off, n, cap)
    local written, i, unknown = {}, off, false
    local err, at -- why and where the list as written fails
    while true do
        if i + 2 > n then err, at = "bad-tlv", i; break end
        if i + 2 > cap then err, at = "truncated", i; break end
        local t, l = u8(tvb, i), u8(tvb, i + 1)
        if t == TLV_END then
            if l ~= 0 then err, at = "bad-tlv", i; break end
            if not unknown then return { ok = true, tlvs = written, stop = i + 2 } end
            -- Read to its end, but with types the agent does not write:
            -- part of a wrapped name may have been read as TLVs.
            err, at = "bad-tlv", off
            break
        end
        if i + 2 + l > n then err, at = "bad-tlv", i; break end
        if i + 2 + l > cap then err, at = "truncated", i; break end
        if not known(t) then unknown = true end
        written[#written + 1] = { i, t, l }
        i = i + 2 + l
    end
    if err == "truncated" and not unknown then
        return { ok = false, err = err, at = at, tlvs = written }
    end

    local budget, count, exhausted = SEARCH_BUDGET, 0, false
    local path, found = {}, nil
    local function walk(j, depth, names)
        budget = budget - 1
        if budget < 0 then exhausted = true; return end
        if j + 2 > n or j + 2 > cap then return end
        local t, l = u8(tvb, j), u8(tvb, j + 1)
        if t == TLV_END then
            if l == 0 and plausible(tvb, j + 2, n, cap) then
                count = count + 1
                found = { stop = j + 2, tlvs = {} }
                for k = 1, depth - 1 do found.tlvs[k] = path[k] end
            end
            return
        end
        if t ~= TLV_SRC_VN and t ~= TLV_DST_VN then
            path[depth] = { j, t, l }
            return walk(j + 2 + l, depth + 1, names)
        end
        if names == MAX_NAME_TLVS then return end
        local len = l
        while j + 2 + len <= n and len <= l + 255 * 256 do
            path[depth] = { j, t, len }
            walk(j + 2 + len, depth + 1, names + 1)
            if count > 1 or exhausted then return end
            len = len + 256
        end
    end
    walk(off, 1, 0)
    if exhausted or count ~= 1 then
        return { ok = false, err = err, at = at, tlvs = written }
    end
    local recovered = false
    for _, e in ipairs(found.tlvs) do
        if e[3] > 255 then recovered = true end
    end
    return { ok = true, tlvs = found.tlvs, stop = found.stop, recovered = recovered }
end

-- The legacy record header starts with a timestamp, so a payload whose
-- first byte is not a TLV type may be one; its incl_len counts either all
-- the bytes after it or only the frame.
local function is_legacy(tvb, n, cap)
    local first = u8(tvb, 0)
    if known(first) or first == TLV_END or n < 16 + 2 then return false end
    if cap < 16 then return nil end
    local incl = tvb(8, 4):uint()
    if incl == n - 16 then return true end
    local r = read_tlvs(tvb, 16, n, cap)
    return r.ok and incl == n - r.stop
end

-- Wireshark's IP reassembly joins fragments by addresses and IP ID alone,
-- however far apart they arrived: an IP ID reused after a lost fragment
-- glues the head of a new datagram to the tail of an old one. Like vrsniff
-- (and Linux's ipfrag_max_dist), fragments between which their source sent
-- more than FRAG_MAX_DIST other datagrams are not taken as one datagram.
--
-- A tap counts the datagrams each IPv4 source starts (unfragmented packets
-- and first fragments) and remembers the count at every fragment; it needs
-- no protocol tree, so it also runs on Wireshark's first pass.
local sent, at_frag, counted = {}, {}, 0

local ip_tap = Listener.new("ip", nil)
function ip_tap.packet(pinfo, _, ip)
    -- Only the outermost header of each frame, once.
    if pinfo.number <= counted then return end
    counted = pinfo.number
    local key = tostring(ip.ip_src)
    local off = bit32.band(ip.ip_off, 0x1fff)
    local starts = off == 0
    if starts then sent[key] = (sent[key] or 0) + 1 end
    if off ~= 0 or bit32.band(ip.ip_off, 0x2000) ~= 0 then
        at_frag[pinfo.number] = { key, sent[key] or 0, starts }
    end
end

-- head_only returns the length of the first fragment when the reassembled
-- IPv4 datagram this frame completes was built from fragments too far
-- apart, and nil otherwise (or when there is no protocol tree to say which
-- fragments were used).
local function head_only(pinfo)
    local frags = { ip_fragment() }
    if #frags < 2 then return nil end
    local here = at_frag[pinfo.number]
    if not here then
        -- First pass: the tap sees this frame after the dissectors.
        local src, off = ip_src(), ip_frag_offset()
        if not src or not off then return nil end
        local key, starts = tostring(src.value), off.value == 0
        here = { key, (sent[key] or 0) + (starts and 1 or 0), starts }
    end
    local nums, head = {}, nil
    for _, fi in ipairs(frags) do
        nums[#nums + 1] = fi.value
        if fi.offset == 0 then head = fi.len end
    end
    table.sort(nums)
    local prev
    for _, num in ipairs(nums) do
        local s = num == pinfo.number and here or at_frag[num]
        if s == nil or s[1] ~= here[1] then return nil end
        -- Datagrams started after the earlier fragment and before this one.
        if prev and s[2] - (s[3] and 1 or 0) - prev[2] > FRAG_MAX_DIST then return head end
        prev = s
    end
    return nil
end

function proto.init()
    sent, at_frag, counted = {}, {}, 0
end

local function add_tlv_head(tree, tvb, e, title)
    local i, t, l = e[1], e[2], e[3]
    local st = tree:add(f.tlv, tvb(i, 2 + l)):set_text(title)
    st:add(f.tlv_type, tvb(i, 1))
    local li = st:add(f.tlv_len, tvb(i + 1, 1))
    if l > 255 then li:append_text(string.format(" (wrapped: the value is %d bytes)", l)) end
    return st, tvb(i + 2, l)
end

local function fits(t, l)
    if t == TLV_HOST then return l == 4 or l == 16 end
    if t == TLV_FLAGS then return l == 4 or l == 2 end
    return t == TLV_SRC_VN or t == TLV_DST_VN
end

-- add_metadata adds the TLVs of the reading r and returns the values the
-- packet carries. When a type repeats, the last TLV that fits its type
-- counts, as in vrsniff; the others are shown raw. A known type of a
-- length that does not fit it is shown raw and counted as odd.
local function add_metadata(tree, tvb, r)
    local m, last_of = { odd = 0 }, {}
    for k, e in ipairs(r.tlvs) do
        if fits(e[2], e[3]) then last_of[e[2]] = k end
    end
    for k, e in ipairs(r.tlvs) do
        local t, l = e[2], e[3]
        local title = (tlv_names[t] or ("Unknown type " .. t)) .. " TLV"
        local st, v = add_tlv_head(tree, tvb, e, title)
        if last_of[t] == k then
            if t == TLV_HOST then
                m.host = v
                st:add(l == 4 and f.host or f.host6, v)
            elseif t == TLV_FLAGS then
                m.flags = v
                local fi = st:add(f.flags, v)
                if l == 2 then fi:append_text(" (16 bits: action bits only, no direction)") end
                for _, ff in ipairs(flag_fields) do
                    if ff[2] <= 0xffff or l == 4 then fi:add(ff[1], v, v:uint()) end
                end
            else
                st:add_packet_field(t == TLV_SRC_VN and f.src_vn or f.dst_vn, v, ENC_UTF_8)
                if t == TLV_SRC_VN then m.src_vn = v else m.dst_vn = v end
                if l > 255 then st:add_proto_expert_info(ex.recovered) end
            end
        else
            if l > 0 then st:add(f.tlv_value, v) end
            if not known(t) then
                st:add_proto_expert_info(ex.unknown)
            elseif fits(t, l) then
                st:add_proto_expert_info(ex.repeated)
            else
                m.odd = m.odd + 1
                st:add_proto_expert_info(ex.odd, string.format("%s TLV of %d bytes, shown raw", tlv_names[t], l))
            end
        end
    end
    local e = tree:add(f.tlv, tvb(r.stop - 2, 2)):set_text("End of metadata")
    e:add(f.tlv_type, tvb(r.stop - 2, 1))
    e:add(f.tlv_len, tvb(r.stop - 1, 1))
    return m
end

-- Whatever was read before a failure is shown as raw TLVs, so that no
-- value field claims a name that may have been misread.
local function add_raw_tlvs(tree, tvb, tlvs)
    for _, e in ipairs(tlvs) do
        local st, v = add_tlv_head(tree, tvb, e, (tlv_names[e[2]] or ("Unknown type " .. e[2])) .. " TLV (as written)")
        if e[3] > 0 then st:add(f.tlv_value, v) end
    end
end

local function fail(item, err, at, why)
    item:add(f.err, err):set_generated()
    item:add(f.err_off, at):set_generated()
    if err == "truncated" then
        item:add(f.truncated, true):set_generated()
        item:add_proto_expert_info(ex.truncated, why)
    else
        item:add_proto_expert_info(ex.malformed, why)
    end
end

-- name_text is a VN name for the summary line: as it is, or quoted with
-- control bytes escaped when it is empty or has spaces, quotes or
-- backslashes.
local function name_text(v)
    local s = v:string(ENC_UTF_8)
    if s ~= "" and not s:find("[%s%c\"\\]") then return s end
    return '"' .. s:gsub("[%c\"\\]", function(c) return string.format("\\x%02x", c:byte()) end) .. '"'
end

function proto.dissector(tvb, pinfo, tree)
    local cap = tvb:len()
    if cap < 1 then return 0 end
    -- The datagram's real length: the UDP header's, when IP handed over
    -- only a first fragment; what the IP header says otherwise.
    local n = tvb:reported_length_remaining()
    local ul = last(udp_length)
    if ul and pinfo.fragmented and ul.value - 8 > n then n = ul.value - 8 end
    pinfo.cols.protocol = "VRMIRROR"
    local item = tree:add(proto, tvb())

    local first_len = head_only(pinfo)
    if first_len then
        -- The bytes of this frame's own fragment, less the UDP header, are
        -- all that surely belong to the datagram.
        cap = math.min(cap, first_len - 8)
        item:add_proto_expert_info(ex.frag_mixed)
    end

    local off = 0
    local legacy = is_legacy(tvb, n, cap)
    if legacy == nil then
        fail(item, "truncated", 0, "legacy record header cut by the capture")
        return cap
    end
    if legacy then
        item:add(f.legacy, true):set_generated()
        local rh = item:add(tvb(0, 16), "Legacy record header")
        rh:add(f.rec_time, tvb(0, 8), NSTime.new(tvb(0, 4):uint(), tvb(4, 4):uint() * 1000))
        rh:add(f.rec_incl, tvb(8, 4))
        rh:add(f.rec_orig, tvb(12, 4))
        off = 16
    end
    local r = read_tlvs(tvb, off, n, cap)
    if not r.ok then
        local meta = off < cap and item:add(tvb(off, cap - off), "Metadata") or item:add("Metadata")
        add_raw_tlvs(meta, tvb, r.tlvs)
        if r.err == "truncated" then
            fail(item, r.err, r.at, string.format("metadata cut by the capture at byte %d of %d", cap, n))
        else
            fail(item, r.err, r.at, "metadata TLV list inconsistent or unterminated")
        end
        return cap
    end
    local meta = item:add(tvb(off, r.stop - off), "Metadata")
    local m = add_metadata(meta, tvb, r)
    if r.recovered then item:add(f.name_recovered, true):set_generated() end
    if m.odd > 0 then item:add(f.odd_tlvs, m.odd):set_generated() end
    if m.flags then item:add(f.flags_len, m.flags:len()):set_generated() end

    local dir
    if m.flags and m.flags:len() == 4 then
        dir = (bit32.band(m.flags:uint(), FLAG_INGRESS) ~= 0) and "ingress" or "egress"
    elseif m.src_vn and not m.dst_vn then
        dir = "ingress" -- port mirroring, traffic from the VM
    elseif m.dst_vn and not m.src_vn then
        dir = "egress" -- port mirroring, traffic to the VM
    end
    if dir then item:add(f.direction, dir):set_generated() end

    local start = r.stop
    local frame_len, got = n - start, cap - start
    if frame_len < 14 then
        fail(item, "bad-inner-frame", start, "mirrored frame shorter than an Ethernet header")
        return cap
    end
    if got < 14 then
        fail(item, "truncated", start, string.format("mirrored frame cut by the capture after %d of %d bytes", got, frame_len))
        return cap
    end
    item:add(f.frame_len, frame_len):set_generated()
    if got < frame_len then
        item:add(f.truncated, true):set_generated()
        item:add_proto_expert_info(ex.truncated, string.format("%d of %d bytes of the mirrored frame captured", got, frame_len))
    end
    item:add(f.frame, tvb(start, got))
    item:set_len(start)
    local summary = {}
    if m.src_vn then summary[#summary + 1] = name_text(m.src_vn) end
    if m.dst_vn then summary[#summary + 1] = "-> " .. name_text(m.dst_vn) end
    if dir then summary[#summary + 1] = "(" .. dir .. ")" end
    if #summary > 0 then item:append_text(", " .. table.concat(summary, " ")) end

    local inner = tvb(start, got):tvb()
    -- Old DPDK vRouters labelled inner IPv6 as IPv4, also behind VLAN tags:
    -- trust the version.
    local pos = 12
    while pos + 4 <= got and is_vlan(inner(pos, 2):uint()) do pos = pos + 4 end
    if pos + 3 <= got and inner(pos, 2):uint() == 0x0800 and bit32.rshift(inner(pos + 2, 1):uint(), 4) == 6 then
        local ba = inner:bytes()
        ba:set_index(pos, 0x86)
        ba:set_index(pos + 1, 0xdd)
        inner = ba:tvb("Mirrored frame (IPv6 ethertype restored)")
    end
    eth:call(inner, pinfo, tree)
    return cap
end

local udp_table = DissectorTable.get("udp.port")
local registered = DEFAULT_PORTS
udp_table:add(registered, proto)
udp_table:add_for_decode_as(proto)

function proto.prefs_changed()
    local ports = tostring(proto.prefs.ports)
    if ports ~= registered then
        udp_table:remove(registered, proto)
        udp_table:add(ports, proto)
        registered = ports
    end
end
