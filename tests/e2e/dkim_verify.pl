#!/usr/bin/perl
# dkim_verify.pl RECORDS MESSAGE [WANT_RSA] - verifies the rsa-sha256 DKIM signatures of MESSAGE
# with Mail::DKIM (Debian libmail-dkim-perl), offline: Mail::DKIM::DNS::query is replaced by a
# lookup in RECORDS ("selector TXT-value" lines, keyed by the first label of the queried name).
# Debian's Mail::DKIM has no ed25519, so ed25519-sha256 signatures are listed as "skipped".
# Exit 0 only if there are WANT_RSA rsa-sha256 signatures (default: at least one) and all pass.
use strict;
use warnings;
use Mail::DKIM::Verifier;
use Mail::DKIM::DNS;
use Net::DNS;

my ($recfile, $msgfile, $want) = @ARGV;
my %records;
open my $rf, '<', $recfile or die "$recfile: $!";
while (<$rf>) { chomp; my ($sel, $value) = split / /, $_, 2; $records{$sel} = $value if $sel; }
close $rf;

{
  no warnings 'redefine';
  *Mail::DKIM::DNS::query = sub {
    my ($name, $type) = @_;
    my ($sel) = split /\./, $name;
    return () unless $type eq 'TXT' && defined $records{$sel};
    return (Net::DNS::RR->new(name => $name, type => 'TXT', txtdata => [unpack('(A255)*', $records{$sel})]));
  };
}

my $v = Mail::DKIM::Verifier->new;
open my $mf, '<', $msgfile or die "$msgfile: $!";
binmode $mf;
while (<$mf>) { s/\r?\n\z/\r\n/; $v->PRINT($_); }
close $mf;
$v->CLOSE;

my ($rsa, $failed) = (0, 0);
my $i = 0;
foreach my $sig ($v->signatures) {
  my $alg = $sig->algorithm // '';
  my $line = sprintf "Mail::DKIM: sig %d d=%s s=%s a=%s c=%s: ", $i++, $sig->domain // '', $sig->selector // '',
    $alg, $sig->canonicalization // '';
  if ($alg ne 'rsa-sha256') { print "${line}skipped (no $alg in this Mail::DKIM)\n"; next; }
  $rsa++;
  my $ok = ($sig->result // '') eq 'pass';
  $failed++ unless $ok;
  printf "%s%s (%s)\n", $line, $ok ? 'PASS' : 'FAIL', $sig->result_detail // '';
}
my $count_ok = defined $want ? $rsa == $want : $rsa > 0;
print "Mail::DKIM: $rsa rsa-sha256 signatures, want " . ($want // 'at least 1') . "\n" unless $count_ok;
exit($failed == 0 && $count_ok ? 0 : 1);
