#!/usr/bin/perl
# sisimai_bench.pl DIR N [make|memory] - Debian's Sisimai (libsisimai-perl 4.25) over every file
# of DIR, N times in one process, after one untimed pass that loads Sisimai's modules.
#   make   (default) a loop over Sisimai->make(FILE): reads the file, splits mboxes, decodes.
#   memory the messages are read (mbox files split) once with Sisimai::Mail; each pass runs what
#          Sisimai->make runs per message: Sisimai::Message->new, then Sisimai::Data->make.
# Prints the same line format as bounce_bench; "messages" counts what Sisimai::Mail reads.
use strict;
use warnings;
use Time::HiRes qw(time);
use Sisimai;
use Sisimai::Mail;
use Sisimai::Message;
use Sisimai::Data;

my ($dir, $n, $mode) = @ARGV;
die "usage: $0 DIR N [make|memory]\n" unless defined $n;
$mode //= 'make';
opendir(my $dh, $dir) or die "$dir: $!\n";
my @files = map { "$dir/$_" } sort grep { -f "$dir/$_" } readdir($dh);
closedir($dh);
my @msgs;
for my $f (@files) {
    my $mail = Sisimai::Mail->new($f) or next;
    while (my $r = $mail->data->read) { push @msgs, $r }
    Sisimai->make($f);    # warm-up: module loading
}
my $recipients = 0;
my $t0 = time;
for (1 .. $n) {
    if ($mode eq 'make') {
        for my $f (@files) {
            my $data = Sisimai->make($f) or next;
            $recipients += scalar @$data;
        }
    } else {
        for my $r (@msgs) {
            my $mesg = Sisimai::Message->new('data' => $r) or next;
            my $data = Sisimai::Data->make('data' => $mesg) or next;
            $recipients += scalar @$data;
        }
    }
}
my $s = time - $t0;
my $messages = scalar(@msgs) * $n;
printf "sisimai messages=%d recipients=%d seconds=%.3f msgs_per_s=%.1f\n", $messages, $recipients, $s,
    $s > 0 ? $messages / $s : 0;
