# Replace every full Apache License 2.0 text (and its APPENDIX boilerplate) with a reference
# to Debian's copy; everything else as it is.
function flush() { if (held != "") { print held; held = "" } }
state == 0 && /^[ \t]*Apache License[ \t]*$/ { held = $0; state = 1; next }
state == 1 { if ($0 ~ /Version 2\.0, January 2004/) { print "Apache License 2.0: see /usr/share/common-licenses/Apache-2.0"; held = ""; state = 2; next }
             flush(); state = 0 }
state == 2 { if ($0 ~ /END OF TERMS AND CONDITIONS/) state = 3; next }
state == 3 { if ($0 ~ /^[ \t]*$/) next; if ($0 ~ /APPENDIX/) { state = 4; next } state = 0 }
state == 4 { if ($0 ~ /limitations under the License\./) state = 0; next }
{ print }
END { flush() }
